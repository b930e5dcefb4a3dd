-- A module beside the DAG file (the test copies it there): require("dagmod") finds it.
return "dagmod"

-- Placed OUTSIDE the script's and the DAG's directories by the test: any
-- require that loads it is an escape.
return "ESCAPED-SECRET-LOADED"

-- A module beside the script, in a subdirectory: require("sub.mod") finds it.
return {name = "sub.mod"}

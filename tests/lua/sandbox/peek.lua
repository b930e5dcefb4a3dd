-- A module beside the script: it must run in the sandbox too.
local leaks = {}
if io ~= nil then leaks[#leaks + 1] = "io" end
if debug ~= nil then leaks[#leaks + 1] = "debug" end
if dofile ~= nil then leaks[#leaks + 1] = "dofile" end
if loadfile ~= nil then leaks[#leaks + 1] = "loadfile" end
if os ~= nil and (os.execute ~= nil or os.getenv ~= nil) then leaks[#leaks + 1] = "os" end
if package ~= nil and package.loadlib ~= nil then leaks[#leaks + 1] = "package.loadlib" end
if string.dump ~= nil then leaks[#leaks + 1] = "string.dump" end
if getmetatable("") ~= false then leaks[#leaks + 1] = "string metatable" end
return #leaks == 0 and "clean" or table.concat(leaks, ",")

-- Self-check of sluice.json.get: emits "ok" or raises with what went wrong.
local get, null = sluice.json.get, sluice.json.null
local function eq(a, b, what) if a ~= b then error(what .. ": got " .. tostring(a) .. ", want " .. tostring(b), 2) end end

function process(rec, ctx)
  local doc = '{"s":"p17","esc":"a\\"b\\u00e9","i":42,"neg":-7,"f":2.5,"big":1700000000000,' ..
              '"t":true,"no":false,"z":null,"o":{"k":[1,2]},"a":[1,"x"]}'
  eq(get(doc, "s"), "p17", "plain string")
  eq(get(doc, "esc"), 'a"b\u{e9}', "string with escapes")
  eq(math.type(get(doc, "i")), "integer", "integer type")
  eq(get(doc, "i"), 42, "integer")
  eq(get(doc, "neg"), -7, "negative")
  eq(get(doc, "f"), 2.5, "float")
  eq(get(doc, "big"), 1700000000000, "epoch ms")
  eq(get(doc, "t"), true, "true")
  eq(get(doc, "no"), false, "false")
  eq(get(doc, "z"), null, "null")
  eq(get(doc, "missing"), nil, "absent field")
  eq(get(doc, "o").k[2], 2, "object")
  eq(get(doc, "a")[2], "x", "array")
  eq(get('{"a":{"s":1}}', "s"), nil, "nested fields are not top-level")
  eq(get(rec.value, "n"), tonumber(rec.value:match('"n":(%d+)')), "the record's own field")
  for _, bad in ipairs({ "[1,2]", "plain", "", '{"a":' }) do
    local ok, err = pcall(get, bad, "a")
    eq(ok, false, "not an object: " .. bad)
    eq(err:find("not a JSON object", 1, true) ~= nil, true, "message for " .. bad)
  end
  ctx:emit("ok")
end

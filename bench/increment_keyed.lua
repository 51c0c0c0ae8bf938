-- wrk script: POST /increment {"value":1} with a fresh Idempotency-Key on
-- every request, as `shardctl inc` sends it (32 hex characters): what keys
-- cost next to bench/increment.lua.
math.randomseed(os.time())
local counter = 0

function setup(thread)
  -- A random prefix per thread: keys differ across threads and runs.
  thread:set("prefix", string.format("%08x", math.random(0, 0x7fffffff)))
end

function request()
  counter = counter + 1
  local key = string.format('"%s%024x"', prefix, counter)
  return wrk.format("POST", nil,
                    {["Content-Type"] = "application/json", ["Idempotency-Key"] = key},
                    '{"value":1}')
end

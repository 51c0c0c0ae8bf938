-- wrk script: POST /increment {"value":V,"counter":"c:NNNNNNN"}, the name drawn
-- from NAMES counters (default 100000) and V cycling through 1..60 (every shard
-- gets its share): named counters, each increment moving one in its shard's
-- rank index. Usage: NAMES=1000000 wrk ... -s bench/increment_named.lua URL
local names = tonumber(os.getenv("NAMES") or "100000")
local n = 0

function setup(thread)
  thread:set("seed", math.random(1, 0x7fffffff))
end

function init()
  math.randomseed(seed)
end

function request()
  n = n + 1
  local body = string.format('{"value":%d,"counter":"c:%07d"}', n % 60 + 1,
                             math.random(0, names - 1))
  return wrk.format("POST", "/increment", {["Content-Type"] = "application/json"}, body)
end

-- wrk script: POST /increment {"value":V} with V cycling through 1..60, so that
-- with value-mod-N routing every shard of a cluster (N = 1..60 dividing 60, and
-- near enough for others) gets its share of the writes.
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/increment", {["Content-Type"] = "application/json"},
                    '{"value":' .. (n % 60 + 1) .. '}')
end

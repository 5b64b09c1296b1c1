--[[
early.lua - count an attempt the gate refused because the listing was not open (409
listing_closed), for the buyer and the device: check.lua reads these as the "early" metric.

KEYS[1] e  hash (check.lua's KEYS[2])
ARGV: listing, ttl_seconds, then fields ("b:<buyer>", "dev:<device>")
Returns the highest count after the call.
]]
local e = KEYS[1]
local listing, ttl = ARGV[1], tonumber(ARGV[2])
local top = 0
for k = 3, #ARGV do
  top = math.max(top, redis.call("HINCRBY", e, listing .. "|" .. ARGV[k], 1))
end
redis.call("EXPIRE", e, ttl)
return top

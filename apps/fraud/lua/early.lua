--[[
early.lua - count an attempt the gate refused because the listing was not open (409
listing_closed), for the buyer and the device: check.lua reads these as the "early" metric. The
numbers check.lua remembered for the attempt's public id are forgotten: a retry of the same
Idempotency-Key after the opening is counted afresh and sees its own early attempts (a sniper
that reuses one key is judged like one that does not).

KEYS[1] the show's hash (check.lua's KEYS[1])
ARGV: listing, ttl_seconds, public_id, then fields ("b:<buyer>", "dev:<device>")
Returns the highest count after the call.
]]
assert(#KEYS == 1 and #ARGV >= 3, "early.lua: 1 key and at least 3 arguments")
local h = KEYS[1]
local listing, ttl = ARGV[1], tonumber(ARGV[2])
redis.call("HDEL", h, "o:" .. ARGV[3])
local top = 0
for k = 4, #ARGV do
  top = math.max(top, redis.call("HINCRBY", h, "e|" .. listing .. "|" .. ARGV[k], 1))
end
if redis.call("TTL", h) < ttl / 2 then  -- as check.lua: its full time again once half is gone
  redis.call("EXPIRE", h, ttl)
end
return top

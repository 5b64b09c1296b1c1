--[[
check.lua - risk control's hot-path counters for one order attempt: count it and return what the
rules read; remember the answer for the order's public id. One call per attempt, before the stock
gate. Every key carries the show's hash tag, so the script runs unchanged on Redis Cluster. The
rules themselves are applied by the caller (apps/fraud/hotpath.py) to the numbers returned: they
change per merchant and cost nothing to compare in Python, so they are not sent on every call.

KEYS[1] v  hash: attempts per "<dim>:<value>" in the show and per "<listing>|<dim>:<value>"
KEYS[2] e  hash: attempts while the listing was not open, per "<listing>|b:<buyer>" / "<listing>|dev:<device>"
KEYS[3] d  hash: order public id -> the numbers this script returned for it ("n1,n2,..."), so a
               retry of the same Idempotency-Key gets the same numbers (and so the same verdict)
               and counts nothing twice
KEYS[4..]  sets: the buyers seen per device / phone / address / drop point in the show (one key
               per value), in the order of ARGV's dims that have a set

ARGV: public_id, listing, buyer, ttl_seconds, device (its digest, "" for none), then pairs
      (dim, value) of the attempt's velocity dims

Returns {replay, n...}: replay 1 when the numbers are the ones remembered for this public id, then
for each velocity dim its listing count and its show count, for each set its size after adding
the buyer, and last the early attempts (the higher of the buyer's and the device's on the listing).
]]
local v, e, d = KEYS[1], KEYS[2], KEYS[3]
local public_id, listing, buyer = ARGV[1], ARGV[2], ARGV[3]
local ttl, device = tonumber(ARGV[4]), ARGV[5]

local remembered = redis.call("HGET", d, public_id)
if remembered then
  local out = {1}
  for n in string.gmatch(remembered, "[^,]+") do
    out[#out + 1] = tonumber(n)
  end
  return out
end

local out = {0}
for k = 6, #ARGV, 2 do
  local field = ARGV[k] .. ":" .. ARGV[k + 1]
  out[#out + 1] = redis.call("HINCRBY", v, listing .. "|" .. field, 1)
  out[#out + 1] = redis.call("HINCRBY", v, field, 1)
end
for k = 4, #KEYS do
  if redis.call("SADD", KEYS[k], buyer) == 1 then
    local size = redis.call("SCARD", KEYS[k])
    if size == 1 then
      redis.call("EXPIRE", KEYS[k], ttl)
    end
    out[#out + 1] = size
  else
    out[#out + 1] = redis.call("SCARD", KEYS[k])
  end
end
local early = tonumber(redis.call("HGET", e, listing .. "|b:" .. buyer)) or 0
if device ~= "" then
  early = math.max(early, tonumber(redis.call("HGET", e, listing .. "|dev:" .. device)) or 0)
end
out[#out + 1] = early

if redis.call("TTL", v) < 0 then
  redis.call("EXPIRE", v, ttl)
end
redis.call("HSET", d, public_id, table.concat(out, ",", 2))
if redis.call("TTL", d) < 0 then
  redis.call("EXPIRE", d, ttl)
end
return out

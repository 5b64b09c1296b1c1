--[[
check.lua - risk control's hot-path counters for one order attempt: count it and return what the
rules read; remember the answer for the order's public id. One call per attempt, before the stock
gate. All of a show's counters live in one hash (KEYS[1], hash-tagged by the show), so the script
runs unchanged on Redis Cluster and an attempt touches one key with one time to live. The rules
themselves are applied by the caller (apps/fraud/hotpath.py) to the numbers returned: they change
per merchant and cost nothing to compare in Python, so they are not sent on every call. Only what
a rule of the catalogue reads is counted (apps/fraud/catalogue.py).

KEYS[1] the show's hash. Its fields:
  "<listing>|<dim>:<value>"       attempts on the listing per value (velocity)
  "b|<dim>:<value>"               distinct buyers seen per value in the show
  "b|<dim>:<value>|<buyer>"       the buyer was counted there (so it is counted once)
  "e|<listing>|b:<buyer>", "e|<listing>|dev:<device>"
                                  attempts while the listing was not open (early.lua)
  "o:<public id>"                 "<shape>=n1,n2,...": the numbers this script returned for it
                                  and what they count, so a retry of the same Idempotency-Key gets
                                  the same numbers (and so the same verdict) and counts nothing twice

The hash expires ttl_seconds after it last ran low: each call gives it its full time again once
less than half is left, so a show's counters outlive the show by at least half of it.

ARGV: public_id, listing, buyer, ttl_seconds, device (its digest, "" for none), shape (what the
      fields count, in order: the same for a retry with the same signals), the number of velocity
      fields, then the velocity fields ("<dim>:<value>"), then the distinct-buyer fields

Returns {replay, n...}: replay 1 when the numbers are the ones remembered for this public id, then
each velocity field's count on the listing, each distinct-buyer field's count after adding the
buyer, and last the early attempts (the higher of the buyer's and the device's on the listing).
A retry whose shape differs from the remembered one (it brings other signals) gets {1} alone: the
numbers counted for other dimensions are not its own.
]]
assert(#KEYS == 1 and #ARGV >= 7, "check.lua: 1 key and at least 7 arguments")
local h = KEYS[1]
local public_id, listing, buyer = ARGV[1], ARGV[2], ARGV[3]
local ttl, device, shape = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local last_velocity = 7 + tonumber(ARGV[7])
local memo = "o:" .. public_id

local remembered = redis.call("HGET", h, memo)
if remembered then
  local out = {1}
  local at = string.find(remembered, "=", 1, true)
  if at == nil or string.sub(remembered, 1, at - 1) ~= shape then
    return out
  end
  for n in string.gmatch(string.sub(remembered, at + 1), "[^,]+") do
    out[#out + 1] = tonumber(n)
  end
  return out
end

local out = {0}
for k = 8, last_velocity do
  out[#out + 1] = redis.call("HINCRBY", h, listing .. "|" .. ARGV[k], 1)
end
for k = last_velocity + 1, #ARGV do
  local count = "b|" .. ARGV[k]
  if redis.call("HSETNX", h, count .. "|" .. buyer, 1) == 1 then
    out[#out + 1] = redis.call("HINCRBY", h, count, 1)
  else
    out[#out + 1] = tonumber(redis.call("HGET", h, count)) or 0
  end
end
local early = redis.call("HMGET", h, "e|" .. listing .. "|b:" .. buyer, "e|" .. listing .. "|dev:" .. device)
out[#out + 1] = math.max(tonumber(early[1]) or 0, device ~= "" and tonumber(early[2]) or 0)

redis.call("HSET", h, memo, shape .. "=" .. table.concat(out, ",", 2))
if redis.call("TTL", h) < ttl / 2 then
  redis.call("EXPIRE", h, ttl)
end
return out

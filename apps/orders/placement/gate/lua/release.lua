--[[
release.lua - give a hold's units back to the listing. Idempotent: a second call is "absent".

KEYS[1] state   hash: closed, opens, closes, quota, left, limit, ver
KEYS[2] buyers  hash: buyer -> units held
KEYS[3] holds   hash: hold id -> "buyer|qty|ts_ms"

ARGV[1] hold_id

Returns {status, left}, status one of:
  "not_loaded"  state is missing; nothing is touched (the rebuild from the database decides); left = 0
  "absent"      no such hold (already released, or never taken); nothing is written
  "released"    hold removed, left += qty, buyers[buyer] -= qty (field deleted at 0), ver += 1
No window check: a release is always allowed.
]]
if #KEYS ~= 3 then
  return redis.error_reply("ERR release.lua expects 3 KEYS (state, buyers, holds), got " .. #KEYS)
end
if #ARGV ~= 1 then
  return redis.error_reply("ERR release.lua expects 1 ARGV (hold_id), got " .. #ARGV)
end

local state, buyers, holds = KEYS[1], KEYS[2], KEYS[3]
local hold_id = ARGV[1]

if redis.call("EXISTS", state) == 0 then
  return {"not_loaded", 0}
end

local record = redis.call("HGET", holds, hold_id)
if not record then
  return {"absent", tonumber(redis.call("HGET", state, "left")) or 0}
end

-- "buyer|qty|ts": the buyer is everything before the last two fields (it may contain "|").
local buyer, qty = string.match(record, "^(.*)|([^|]*)|[^|]*$")
qty = tonumber(qty)
if buyer == nil or qty == nil then
  return redis.error_reply("ERR release.lua malformed hold record for " .. hold_id .. ": " .. record)
end

redis.call("HDEL", holds, hold_id)
local left = redis.call("HINCRBY", state, "left", qty)
redis.call("HINCRBY", state, "ver", 1)
if redis.call("HINCRBY", buyers, buyer, -qty) <= 0 then
  redis.call("HDEL", buyers, buyer)
end
return {"released", left}

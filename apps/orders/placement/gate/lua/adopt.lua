--[[
adopt.lua - force-add a hold the database has but Redis lost (the reconciler's repair). No window,
quota or limit check: the database already decided. Only presence is checked, so it is idempotent.

KEYS[1] state   hash: closed, opens, closes, quota, left, limit, ver
KEYS[2] buyers  hash: buyer -> units held
KEYS[3] holds   hash: hold id -> "buyer|qty|ts_ms"

ARGV[1] hold_id  ARGV[2] buyer  ARGV[3] qty (integer >= 1)  ARGV[4] ts_ms

Returns {status, left}, status one of:
  "not_loaded"  state is missing; nothing is written (a load brings every hold); left = 0
  "present"     the hold is already there; nothing is written
  "adopted"     holds[hold] = "buyer|qty|ts", left -= qty (may go negative), buyers[buyer] += qty, ver += 1
]]
if #KEYS ~= 3 then
  return redis.error_reply("ERR adopt.lua expects 3 KEYS (state, buyers, holds), got " .. #KEYS)
end
if #ARGV ~= 4 then
  return redis.error_reply("ERR adopt.lua expects 4 ARGV (hold_id, buyer, qty, ts_ms), got " .. #ARGV)
end

local state, buyers, holds = KEYS[1], KEYS[2], KEYS[3]
local hold_id, buyer = ARGV[1], ARGV[2]
local qty = tonumber(ARGV[3])
if qty == nil or qty < 1 or qty ~= math.floor(qty) then
  return redis.error_reply("ERR adopt.lua qty must be a positive integer, got " .. tostring(ARGV[3]))
end
if tonumber(ARGV[4]) == nil then
  return redis.error_reply("ERR adopt.lua ts_ms must be a number, got " .. tostring(ARGV[4]))
end

if redis.call("EXISTS", state) == 0 then
  return {"not_loaded", 0}
end
if redis.call("HEXISTS", holds, hold_id) == 1 then
  return {"present", tonumber(redis.call("HGET", state, "left")) or 0}
end

redis.call("HSET", holds, hold_id, buyer .. "|" .. string.format("%d", qty) .. "|" .. ARGV[4])
redis.call("HINCRBY", buyers, buyer, qty)
local left = redis.call("HINCRBY", state, "left", -qty)
redis.call("HINCRBY", state, "ver", 1)
return {"adopted", left}

--[[
load.lua - (re)build a listing's gate from database truth, replacing all three keys atomically.
Called under the rebuild lock when a script answered "not_loaded", and by the reconciler.

KEYS[1] state   hash: closed, opens, closes, quota, left, limit, ver
KEYS[2] buyers  hash: buyer -> units held
KEYS[3] holds   hash: hold id -> "buyer|qty|ts_ms"

ARGV[1] closed ("0"/"1")  ARGV[2] opens (epoch ms)  ARGV[3] closes (epoch ms, 0 = no end)
ARGV[4] quota  ARGV[5] limit  ARGV[6] n = number of holds
ARGV[7..] n triples: hold_id, buyer, qty (integer >= 1)

Returns {"loaded", left, ver}:
  left = quota - sum(qty) (exact; negative if the holds exceed the quota)
  ver  = old ver + 1 when a state existed (read before the DEL), so it never goes backwards;
         on a fresh load (first load, or Redis lost the key) ver starts from the server clock in
         microseconds, which is ahead of any version a lost state could have reached.
Holds get the server time (ms) as their ts. Everything is validated before the first write:
an error (bad arity, bad number, duplicate hold id) leaves the keys untouched.
]]
if #KEYS ~= 3 then
  return redis.error_reply("ERR load.lua expects 3 KEYS (state, buyers, holds), got " .. #KEYS)
end
if #ARGV < 6 then
  return redis.error_reply(
    "ERR load.lua expects at least 6 ARGV (closed, opens, closes, quota, limit, n), got " .. #ARGV)
end
if ARGV[1] ~= "0" and ARGV[1] ~= "1" then
  return redis.error_reply("ERR load.lua closed must be 0 or 1, got " .. ARGV[1])
end
local names = {"closed", "opens", "closes", "quota", "limit", "n"}
for i = 2, 6 do
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) then
    return redis.error_reply("ERR load.lua " .. names[i] .. " must be an integer, got " .. ARGV[i])
  end
end
local n = tonumber(ARGV[6])
if n < 0 or #ARGV ~= 6 + 3 * n then
  return redis.error_reply(
    "ERR load.lua n = " .. ARGV[6] .. " needs " .. (6 + 3 * n) .. " ARGV, got " .. #ARGV)
end

-- Validate every hold before touching anything (a script error does not roll back writes).
local seen, per_buyer, total = {}, {}, 0
for i = 0, n - 1 do
  local hold_id, buyer, qty = ARGV[7 + 3 * i], ARGV[8 + 3 * i], tonumber(ARGV[9 + 3 * i])
  if qty == nil or qty < 1 or qty ~= math.floor(qty) then
    return redis.error_reply("ERR load.lua qty of hold " .. hold_id .. " must be a positive integer, got "
      .. ARGV[9 + 3 * i])
  end
  if seen[hold_id] then
    return redis.error_reply("ERR load.lua duplicate hold id " .. hold_id)
  end
  seen[hold_id] = true
  per_buyer[buyer] = (per_buyer[buyer] or 0) + qty
  total = total + qty
end

local state, buyers, holds = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call("TIME")
local old_ver = tonumber(redis.call("HGET", state, "ver"))
local ver
if old_ver then
  ver = old_ver + 1
else
  ver = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local ts = string.format("%.0f", tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local left = tonumber(ARGV[4]) - total

redis.call("DEL", state, buyers, holds)
redis.call("HSET", state, "closed", ARGV[1], "opens", ARGV[2], "closes", ARGV[3], "quota", ARGV[4],
  "left", string.format("%.0f", left), "limit", ARGV[5], "ver", string.format("%.0f", ver))

-- HSET in batches: unpack() of thousands of arguments would overflow the Lua C stack.
local BATCH = 500
local batch = {}
for i = 0, n - 1 do
  local qty = tonumber(ARGV[9 + 3 * i])
  batch[#batch + 1] = ARGV[7 + 3 * i]
  batch[#batch + 1] = ARGV[8 + 3 * i] .. "|" .. string.format("%d", qty) .. "|" .. ts
  if #batch >= 2 * BATCH then
    redis.call("HSET", holds, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call("HSET", holds, unpack(batch))
end
batch = {}
for buyer, qty in pairs(per_buyer) do
  batch[#batch + 1] = buyer
  batch[#batch + 1] = string.format("%d", qty)
  if #batch >= 2 * BATCH then
    redis.call("HSET", buyers, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call("HSET", buyers, unpack(batch))
end
return {"loaded", left, ver}

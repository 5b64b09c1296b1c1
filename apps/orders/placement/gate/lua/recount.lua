--[[
recount.lua - repair a listing's derived counters from its holds: left = quota - sum(hold qty),
buyers = per-buyer sums of the holds. The holds are the Redis-side truth; this fixes drift in
the two counters (a corrupted or hand-edited left, a stray buyers field).

KEYS[1] state   hash: closed, opens, closes, quota, left, limit, ver
KEYS[2] buyers  hash: buyer -> units held
KEYS[3] holds   hash: hold id -> "buyer|qty|ts_ms"

ARGV: none

Returns {status, left, changed}:
  "not_loaded"  state is missing; nothing is written; left = 0, changed = 0
  "ok"          counters now match the holds; changed = 1 if anything was rewritten (then ver += 1)
Error (nothing written): a malformed hold record.
]]
if #KEYS ~= 3 then
  return redis.error_reply("ERR recount.lua expects 3 KEYS (state, buyers, holds), got " .. #KEYS)
end
if #ARGV ~= 0 then
  return redis.error_reply("ERR recount.lua expects no ARGV, got " .. #ARGV)
end

local state, buyers, holds = KEYS[1], KEYS[2], KEYS[3]
if redis.call("EXISTS", state) == 0 then
  return {"not_loaded", 0, 0}
end

local per_buyer, total = {}, 0
local all = redis.call("HGETALL", holds)
for i = 1, #all, 2 do
  local buyer, qty = string.match(all[i + 1], "^(.*)|([^|]*)|[^|]*$")
  qty = tonumber(qty)
  if buyer == nil or qty == nil then
    return redis.error_reply("ERR recount.lua malformed hold record for " .. all[i] .. ": " .. all[i + 1])
  end
  per_buyer[buyer] = (per_buyer[buyer] or 0) + qty
  total = total + qty
end

local changed = 0

-- buyers: rewrite the hash if any field differs, is missing or is extra.
local current = redis.call("HGETALL", buyers)
local same = true
local count = 0
for i = 1, #current, 2 do
  count = count + 1
  if per_buyer[current[i]] ~= tonumber(current[i + 1]) then
    same = false
    break
  end
end
if same then
  for _ in pairs(per_buyer) do
    count = count - 1
  end
  same = (count == 0)
end
if not same then
  changed = 1
  redis.call("DEL", buyers)
  local batch = {}
  for buyer, qty in pairs(per_buyer) do
    batch[#batch + 1] = buyer
    batch[#batch + 1] = string.format("%d", qty)
    if #batch >= 1000 then
      redis.call("HSET", buyers, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then
    redis.call("HSET", buyers, unpack(batch))
  end
end

local s = redis.call("HMGET", state, "quota", "left")
local left = (tonumber(s[1]) or 0) - total
if s[2] ~= string.format("%.0f", left) then
  changed = 1
  redis.call("HSET", state, "left", string.format("%.0f", left))
end

if changed == 1 then
  redis.call("HINCRBY", state, "ver", 1)
end
return {"ok", left, changed}

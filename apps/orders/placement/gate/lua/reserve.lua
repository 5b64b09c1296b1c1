--[[
reserve.lua - the flash-sale gate: atomically decide whether a buyer may hold `qty` units of a
listing, and if so take the hold.

KEYS[1] state   hash: closed ("0"/"1"), opens (epoch ms), closes (epoch ms, 0 = no end),
                      quota, left, limit (per buyer), ver
KEYS[2] buyers  hash: buyer -> units held
KEYS[3] holds   hash: hold id (the order's public id) -> "buyer|qty|ts_ms"
KEYS[4] tally   hash: outcome -> count of the fresh decisions taken ("ok", "closed", "over_limit",
                "sold_out"): a listing's attempts and refusals for its report (drained to the
                database by tally_drain.lua; replays and "seen" are not counted)
KEYS[5] seen    (optional) hash: hold id -> "1" for every hold ever taken (idempotent replays of
                an order whose hold was since released are told apart from new requests)

ARGV[1] hold_id  ARGV[2] buyer  ARGV[3] qty (integer >= 1)  ARGV[4] now_ms

Returns {status, left, buyer_held, replay}, status one of:
  "not_loaded"  state is missing (rebuild it from the database, then retry); left = held = 0
  "ok"          the hold was taken (left -= qty, buyers[buyer] += qty, ver += 1), or it already
                existed (idempotent: no second effect; held is then its own buyer's units)
  "seen"        (only with KEYS[5]) no hold now, but this hold id took one before: the caller
                looks its order up; nothing is written
  "closed"      closed == "1", or now < opens, or (closes > 0 and now >= closes)
  "over_limit"  buyers[buyer] + qty > limit (before sold_out: a buyer asking for more than they
                may have is told so, never "sold out" while units are left); never for the
                buyer "*" (a sales platform's order: the platform has applied its own limits)
  "sold_out"    left < qty
replay is 1 when the answer is about an existing hold or a seen hold id, else 0.
Checks run in that order. A fresh decision (ok, closed, over_limit, sold_out) adds 1 to its count in
the tally; nothing else is written unless the status is a fresh "ok".
Errors (nothing written): wrong number of KEYS or ARGV, qty not a positive integer, now not a number.
]]
if #KEYS ~= 4 and #KEYS ~= 5 then
  return redis.error_reply("ERR reserve.lua expects 5 KEYS (state, buyers, holds, tally, seen; seen may be left out), got " .. #KEYS)
end
if #ARGV ~= 4 then
  return redis.error_reply("ERR reserve.lua expects 4 ARGV (hold_id, buyer, qty, now_ms), got " .. #ARGV)
end

local state, buyers, holds, tally, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local hold_id, buyer = ARGV[1], ARGV[2]
local qty, now = tonumber(ARGV[3]), tonumber(ARGV[4])
if qty == nil or qty < 1 or qty ~= math.floor(qty) then
  return redis.error_reply("ERR reserve.lua qty must be a positive integer, got " .. tostring(ARGV[3]))
end
if now == nil then
  return redis.error_reply("ERR reserve.lua now_ms must be a number, got " .. tostring(ARGV[4]))
end

if redis.call("EXISTS", state) == 0 then
  return {"not_loaded", 0, 0, 0}
end

local s = redis.call("HMGET", state, "closed", "opens", "closes", "left", "limit")
local left = tonumber(s[4]) or 0

local existing = redis.call("HGET", holds, hold_id)
if existing then
  -- Idempotent replay: report the hold's own buyer (the one that counts), never re-apply.
  local owner = string.match(existing, "^(.*)|[^|]*|[^|]*$") or buyer
  return {"ok", left, tonumber(redis.call("HGET", buyers, owner)) or 0, 1}
end

local held = tonumber(redis.call("HGET", buyers, buyer)) or 0
if seen and redis.call("HEXISTS", seen, hold_id) == 1 then
  return {"seen", left, held, 1}
end
local opens = tonumber(s[2]) or 0
local closes = tonumber(s[3]) or 0
if s[1] == "1" or now < opens or (closes > 0 and now >= closes) then
  redis.call("HINCRBY", tally, "closed", 1)
  return {"closed", left, held, 0}
end
if buyer ~= "*" and held + qty > (tonumber(s[5]) or 0) then
  redis.call("HINCRBY", tally, "over_limit", 1)
  return {"over_limit", left, held, 0}
end
if left < qty then
  redis.call("HINCRBY", tally, "sold_out", 1)
  return {"sold_out", left, held, 0}
end

left = redis.call("HINCRBY", state, "left", -qty)
redis.call("HINCRBY", state, "ver", 1)
held = redis.call("HINCRBY", buyers, buyer, qty)
redis.call("HSET", holds, hold_id, buyer .. "|" .. string.format("%d", qty) .. "|" .. ARGV[4])
if seen then
  redis.call("HSET", seen, hold_id, "1")
end
redis.call("HINCRBY", tally, "ok", 1)
return {"ok", left, held, 0}

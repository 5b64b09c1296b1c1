--[[
meta.lua - apply a listing's changed window, quota or per-buyer limit to a loaded gate, keeping
its holds. The units left move by exactly the quota change: left += new quota - old quota. Nothing
is clamped: if the quota shrinks below the units held, left goes negative and reserve answers
"sold_out" until enough holds are released.

KEYS[1] state   hash: closed, opens, closes, quota, left, limit, ver

ARGV[1] closed ("0"/"1")  ARGV[2] opens (epoch ms; a huge value such as 9e15 = not yet opened)
ARGV[3] closes (epoch ms, 0 = no end)  ARGV[4] quota  ARGV[5] limit (per buyer)

Returns {status, left, ver}, status one of:
  "not_loaded"  state is missing; nothing is written (the next load carries the new values); 0, 0
  "ok"          fields updated, left adjusted, ver += 1
]]
if #KEYS ~= 1 then
  return redis.error_reply("ERR meta.lua expects 1 KEYS (state), got " .. #KEYS)
end
if #ARGV ~= 5 then
  return redis.error_reply("ERR meta.lua expects 5 ARGV (closed, opens, closes, quota, limit), got " .. #ARGV)
end
if ARGV[1] ~= "0" and ARGV[1] ~= "1" then
  return redis.error_reply("ERR meta.lua closed must be 0 or 1, got " .. ARGV[1])
end
local names = {"closed", "opens", "closes", "quota", "limit"}
for i = 2, 5 do
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) then
    return redis.error_reply("ERR meta.lua " .. names[i] .. " must be an integer, got " .. ARGV[i])
  end
end

local state = KEYS[1]
if redis.call("EXISTS", state) == 0 then
  return {"not_loaded", 0, 0}
end

local old_quota = tonumber(redis.call("HGET", state, "quota")) or 0
local new_quota = tonumber(ARGV[4])
redis.call("HSET", state, "closed", ARGV[1], "opens", ARGV[2], "closes", ARGV[3], "quota", ARGV[4],
  "limit", ARGV[5])
local left = redis.call("HINCRBY", state, "left", new_quota - old_quota)
local ver = redis.call("HINCRBY", state, "ver", 1)
return {"ok", left, ver}

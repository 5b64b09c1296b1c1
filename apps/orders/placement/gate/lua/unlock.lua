--[[
unlock.lua - release the rebuild lock only if this caller still owns it (compare-and-delete), so
a caller whose lock expired never deletes the lock a later caller took.

KEYS[1] lock   string: the owner's random token (SET NX PX)
ARGV[1] token

Returns 1 if the lock was ours and is deleted, 0 otherwise.
]]
if #KEYS ~= 1 then
  return redis.error_reply("ERR unlock.lua expects 1 KEYS (lock), got " .. #KEYS)
end
if #ARGV ~= 1 then
  return redis.error_reply("ERR unlock.lua expects 1 ARGV (token), got " .. #ARGV)
end
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0

--[[
tally_drain.lua - hand a listing's tally (reserve.lua's counts of its decisions) over to the
database, exactly once: the counts move to a pending hash stamped with a token; the caller adds
them to the database row unless that row already took this token, then deletes the pending hash
with tally_ack.lua. A caller that died in between leaves the pending hash: the next drain returns
it again, same token, and the database row's token makes the second add a no-op.

KEYS[1] tally    hash: outcome -> count (reserve.lua)
KEYS[2] pending  hash: outcome -> count, and "token"

ARGV[1] token  (used only when a new pending hash is made)

Returns the pending hash as a flat list {field, value, ...} including "token" (the one left over
from an earlier drain when there is one, else the new one), or an empty list when there was
nothing to hand over.
]]
if #KEYS ~= 2 then
  return redis.error_reply("ERR tally_drain.lua expects 2 KEYS (tally, pending), got " .. #KEYS)
end
if #ARGV ~= 1 or ARGV[1] == "" then
  return redis.error_reply("ERR tally_drain.lua expects 1 ARGV (a non-empty token), got " .. #ARGV)
end
local tally, pending = KEYS[1], KEYS[2]
if redis.call("EXISTS", pending) == 1 then
  return redis.call("HGETALL", pending)
end
if redis.call("EXISTS", tally) == 0 then
  return {}
end
redis.call("RENAME", tally, pending)
redis.call("HSET", pending, "token", ARGV[1])
return redis.call("HGETALL", pending)

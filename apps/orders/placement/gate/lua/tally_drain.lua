--[[
tally_drain.lua - hand a listing's tally (reserve.lua's counts of its decisions) over to the
database, exactly once: the counts move to a pending hash stamped with a sequence number that
only grows (the server clock in microseconds, and above the last one given). The caller adds them
to the database row only if the row's last sequence number is below this one, then deletes the
pending hash with tally_ack.lua. A caller that died in between leaves the pending hash: the next
drain returns it again, same number, and the row refuses it. A caller that stalled with an old
hand-over finds the row past it (a later hand-over has a higher number): nothing is added twice.

KEYS[1] tally    hash: outcome -> count (reserve.lua)
KEYS[2] pending  hash: outcome -> count, and "seq"
KEYS[3] last     string: the last sequence number given for this listing

(no ARGV)

Returns the pending hash as a flat list {field, value, ...} including "seq" (the one left over
from an earlier drain when there is one, else a new one), or an empty list when there was nothing
to hand over.
]]
if #KEYS ~= 3 then
  return redis.error_reply("ERR tally_drain.lua expects 3 KEYS (tally, pending, last), got " .. #KEYS)
end
if #ARGV ~= 0 then
  return redis.error_reply("ERR tally_drain.lua expects 0 ARGV, got " .. #ARGV)
end
local tally, pending, last = KEYS[1], KEYS[2], KEYS[3]
if redis.call("EXISTS", pending) == 1 then
  return redis.call("HGETALL", pending)
end
if redis.call("EXISTS", tally) == 0 then
  return {}
end
local t = redis.call("TIME")
local seq = tonumber(t[1]) * 1000000 + tonumber(t[2])
local before = tonumber(redis.call("GET", last) or "0") or 0
if seq <= before then
  seq = before + 1
end
local s = string.format("%.0f", seq)
redis.call("SET", last, s)
redis.call("RENAME", tally, pending)
redis.call("HSET", pending, "seq", s)
return redis.call("HGETALL", pending)

--[[
tally_ack.lua - delete a listing's pending tally once the database has its counts
(compare-and-delete: a pending hash made by a later drain, with another number, is left alone).

KEYS[1] pending  hash made by tally_drain.lua

ARGV[1] seq      the sequence number of the hand-over the database took

Returns 1 when the pending hash was deleted, 0 when it was absent or holds another number.
]]
if #KEYS ~= 1 then
  return redis.error_reply("ERR tally_ack.lua expects 1 KEYS (pending), got " .. #KEYS)
end
if #ARGV ~= 1 then
  return redis.error_reply("ERR tally_ack.lua expects 1 ARGV (seq), got " .. #ARGV)
end
if redis.call("HGET", KEYS[1], "seq") == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0

--[[
sms_rate_release.lua - give back the send sms_rate.lua took, when the provider did not accept it
(Aliyun counts only accepted messages against its flow control). A counter that has expired in
the meantime, or is already 0, is left alone.

KEYS[1..3] the keys of sms_rate.lua
ARGV: none
Returns how many counters were decremented.
]]
assert(#KEYS == 3 and #ARGV == 0, "sms_rate_release.lua: 3 keys and no arguments")
local n = 0
for i = 1, 3 do
  local used = tonumber(redis.call("GET", KEYS[i]) or "0")
  if used > 0 then
    redis.call("DECR", KEYS[i])
    n = n + 1
  end
end
return n

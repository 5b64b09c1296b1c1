--[[
sms_rate.lua - take one send from a merchant's SMS rate limits, or say which limit holds it back.
Nothing is counted when a limit holds (a deferred message takes no slot). Every key carries the
merchant's hash tag, so the script runs unchanged on Redis Cluster. The counters are a cache of
recent sends: when Redis is unreachable the caller counts sent messages in the database instead
(apps/notifications/ratelimit.py).

KEYS[1] phone, per minute   string counter, expires ARGV[4] seconds after its first send
KEYS[2] phone, per day      string counter, expires ARGV[5] seconds after its first send
KEYS[3] merchant, per minute string counter, expires ARGV[4] seconds after its first send

ARGV: per_phone_minute, per_phone_day, per_merchant_minute, minute_seconds, day_seconds
      (a limit of 0 means no limit)

Returns {verdict, wait_ms}: verdict 0 taken (all three counted), 1 the phone's minute limit,
2 the phone's day limit, 3 the merchant's minute limit; wait_ms until that window ends.
]]
assert(#KEYS == 3 and #ARGV == 5, "sms_rate.lua: 3 keys and 5 arguments")
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])}
local windows = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[4])}

for i = 1, 3 do
  local limit = limits[i]
  if limit > 0 then
    local used = tonumber(redis.call("GET", KEYS[i]) or "0")
    if used >= limit then
      local wait = redis.call("PTTL", KEYS[i])
      if wait < 0 then
        wait = windows[i] * 1000
      end
      return {i, wait}
    end
  end
end

for i = 1, 3 do
  if redis.call("INCR", KEYS[i]) == 1 then
    redis.call("EXPIRE", KEYS[i], windows[i])
  end
end
return {0, 0}

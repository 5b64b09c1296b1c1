--[[
stock_mark.lua - the stock sync's whole cost on the order path: note that something whose
available count may have changed ("s:<sku>", "l:<listing>", "o:<order>") needs a push to the
sales platforms, and ask for a drain when none is running. One call per change, O(1).

KEYS[1] m  set: ids of merchants with a platform shop, plus the sentinel "0" (so the key exists
           once built; a missing key means Redis lost it and the minute sweep rebuilds it)
KEYS[2] d  set: the dirty members waiting for the drain
KEYS[3] k  string: the drain's lease ("a drain runs or is queued"), with an expiry

ARGV: merchant ("" when the caller does not know it: then any merchant with a shop counts),
      member, lease_ms

Returns 0 nothing to do (the merchant sells on no platform), 1 marked and a drain must be queued
(the lease was free and is now the caller's), 2 marked while a drain runs (it will see the
member), 3 marked without a drain (the merchant set is missing: the sweep catches up).
]]
assert(#KEYS == 3 and #ARGV == 3, "stock_mark.lua takes 3 keys and 3 args")
local merchants, dirty, lease = KEYS[1], KEYS[2], KEYS[3]
local merchant, member, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])

if redis.call("EXISTS", merchants) == 0 then
  redis.call("SADD", dirty, member)
  return 3
end
if merchant == "" then
  if redis.call("SCARD", merchants) <= 1 then
    return 0
  end
elseif redis.call("SISMEMBER", merchants, merchant) == 0 then
  return 0
end
redis.call("SADD", dirty, member)
if redis.call("SET", lease, "1", "NX", "PX", lease_ms) then
  return 1
end
return 2

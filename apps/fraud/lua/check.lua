--[[
check.lua - risk control's hot-path rules for one order attempt: count it, judge it, remember the
verdict. One call per attempt, before the stock gate. Every key carries the show's hash tag, so the
script runs unchanged on Redis Cluster.

KEYS[1] v  hash: attempts per "<dim>:<value>" in the show and per "<listing>|<dim>:<value>"
KEYS[2] e  hash: attempts while the listing was not open, per "<listing>|b:<buyer>" / "<listing>|dev:<device>"
KEYS[3] d  hash: order public id -> this script's verdict (JSON), so a retry of the same
               Idempotency-Key gets the same verdict and counts nothing twice
KEYS[4..]  sets: the buyers seen per device / phone / address in the show (one key per value)

ARGV: public_id, listing, buyer, ttl_seconds,
      n_dims, then n_dims pairs (dim, value)              -- velocity counters to bump
      n_sets, then n_sets dim names (for KEYS[4..])        -- distinct-buyer sets to join
      n_ext,  then n_ext pairs (metric, value)            -- metrics computed by the caller
      n_rules, then n_rules groups (code, metric, threshold, action, mode)

Metrics: "<dim>.l" (listing attempts), "<dim>.s" (show attempts), "<dim>.b" (distinct buyers),
"early" (max early attempts of the buyer and the device on the listing), and the caller's.
A rule fires when its metric is above its threshold; a rule in mode "on" acts, "dry_run" records.

Returns a JSON object: decision ("allow" | "review" | "block"), hits [[code, value], ...] (rules
that acted), dry [[code, value], ...], short (1: a short_window rule acted), m {metric: value},
replay (1: the verdict is the one remembered for this public id; nothing was counted).
]]
local v, e, d = KEYS[1], KEYS[2], KEYS[3]
local public_id, listing, buyer = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4])

local remembered = redis.call("HGET", d, public_id)
if remembered then
  local verdict = cjson.decode(remembered)
  verdict["replay"] = 1
  return cjson.encode(verdict)
end

local m = {}
local i = 5
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local dim, value = ARGV[i], ARGV[i + 1]
  i = i + 2
  m[dim .. ".s"] = redis.call("HINCRBY", v, dim .. ":" .. value, 1)
  m[dim .. ".l"] = redis.call("HINCRBY", v, listing .. "|" .. dim .. ":" .. value, 1)
end
n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do
  local key = KEYS[3 + k]
  redis.call("SADD", key, buyer)
  redis.call("EXPIRE", key, ttl)
  m[ARGV[i] .. ".b"] = redis.call("SCARD", key)
  i = i + 1
end
local early_b = tonumber(redis.call("HGET", e, listing .. "|b:" .. buyer)) or 0
local early_d = 0
for k = 6, 5 + 2 * tonumber(ARGV[5]), 2 do
  if ARGV[k] == "dev" then
    early_d = tonumber(redis.call("HGET", e, listing .. "|dev:" .. ARGV[k + 1])) or 0
  end
end
m["early"] = math.max(early_b, early_d)
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  m[ARGV[i]] = tonumber(ARGV[i + 1]) or 0
  i = i + 2
end

local decision, short = "allow", 0
local hits, dry = {}, {}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local code, metric, threshold, action, mode = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local value = m[metric]
  if value ~= nil and value > threshold then
    if mode == "on" then
      table.insert(hits, {code, value})
      if action == "block" then
        decision = "block"
      elseif action == "review" and decision == "allow" then
        decision = "review"
      elseif action == "short_window" then
        short = 1
      end
    else
      table.insert(dry, {code, value})
    end
  end
end

redis.call("EXPIRE", v, ttl)
local verdict = {decision = decision, hits = hits, dry = dry, short = short, m = m, replay = 0}
local encoded = cjson.encode(verdict)
redis.call("HSET", d, public_id, encoded)
redis.call("EXPIRE", d, ttl)
return encoded

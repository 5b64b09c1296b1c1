-- wrk script for the flash-sale benchmark (bench/flash_sale/wire.py): POST /api/v1/orders with a
-- real order body, a NEW buyer and a NEW Idempotency-Key on every request.
--
--   wrk -t2 -c256 -d10s --timeout 10s -s bench/flash_sale/wrk/order.lua \
--       http://127.0.0.1:PORT/api/v1/orders -- TOKEN LISTING [PREFIX] [FIRST]
--
-- TOKEN    a merchant's API token (sent as "Authorization: Bearer TOKEN")
-- LISTING  the listing id put in every body
-- PREFIX   buyer external ids and Idempotency-Keys start with it (default: random per run)
-- FIRST    the first buyer number; thread t numbers its buyers FIRST + (t - 1) * STRIDE + i, so no
--          two requests of a run share a buyer, a phone, an address or a device
--
-- The body has the shape of bench/flash_sale/risk.py's buyer_body(listing, n, prefix): its own
-- phone (11-digit mainland mobile), address and device per buyer, one of 3,000 carrier IPs, an app
-- user agent, an account opened in 2022, so the risk rules count every dimension and block nobody.
--
-- done() prints one line, "WRK_JSON {...}": answers per HTTP status, refusals (4xx/5xx) per status
-- and body "code" (e.g. "409 sold_out"), requests/s, latency
-- p50/p90/p99 (ms, wrk's histogram), socket errors, and the requests each thread sent.

local STRIDE = 2000000
local IP_POOL = 3000
local NETS = { { 112, 10 }, { 117, 136 }, { 223, 104 }, { 36, 112 }, { 183, 192 }, { 39, 144 } }
local PLACES = {
  { "浙江省", "杭州市", "西湖区", "文三路" },
  { "广东省", "深圳市", "南山区", "科技园路" },
  { "江苏省", "南京市", "鼓楼区", "中山北路" },
  { "四川省", "成都市", "武侯区", "人民南路" },
  { "北京市", "北京市", "海淀区", "中关村大街" },
  { "上海市", "上海市", "浦东新区", "张江路" },
}
local AGENTS = {
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    .. "Mobile/15E148 aweme/30.1.0",
  "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    .. "Version/4.0 Chrome/120.0.6099.193 Mobile Safari/537.36 aweme/29.9.0",
}

local threads = {}
local next_tid = 1

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local function client_ip(n)
  local k = n % IP_POOL
  local net = NETS[k % #NETS + 1]
  local j = math.floor(k / #NETS)
  return string.format("%d.%d.%d.%d", net[1], net[2], j % 125, 10 + math.floor(j / 125))
end

local function body(n)
  local place = PLACES[n % #PLACES + 1]
  local phone = string.format("13%d%08d", 5 + n % 5, n % 100000000)
  local opened = os.date("%Y-%m-%d", os.time({ year = 2022, month = 1, day = 1 + n % 365, hour = 12 }))
  local detail = string.format("%s%d号%d栋%d室", place[4], n % 500 + 1, math.floor(n / 500) + 1, 101 + n % 17)
  return string.format(
    '{"listing":%d,"quantity":1,'
      .. '"buyer":{"external_id":"%s%d","name":"B","phone":"%s","registered_at":"%sT%02d:%02d:00+08:00"},'
      .. '"shipping_address":{"name":"B","phone":"%s","province":"%s","city":"%s","district":"%s","detail":"%s"},'
      .. '"client":{"ip":"%s","device_id":"d-w%015x","user_agent":"%s"}}',
    listing, prefix, n, phone, opened, n % 24, n % 60,
    phone, place[1], place[2], place[3], detail,
    client_ip(n), n, AGENTS[n % #AGENTS + 1]
  )
end

function init(args)
  token = args[1] or error("order.lua: the API token is the first argument after --")
  listing = tonumber(args[2] or error("order.lua: the listing id is the second argument after --"))
  math.randomseed(os.time() * 1000 + tid)
  prefix = args[3] or string.format("w%08x", math.random(0, 0x7fffffff))
  local first = tonumber(args[4] or "0")
  base = first + (tid - 1) * STRIDE
  sent = 0
  statuses = {}
  codes = {}
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }
end

function request()
  local n = base + sent
  sent = sent + 1
  headers["Idempotency-Key"] = string.format("%s-t%d-%d", prefix, tid, sent)
  return wrk.format("POST", nil, headers, body(n))
end

function response(status, _headers, resp)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 400 then -- a refusal: count it by its machine-readable code as well
    local key = string.format("%d %s", status, resp and resp:match('"code"%s*:%s*"([^"]+)"') or "?")
    codes[key] = (codes[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  local by_code = {}
  local per_thread = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + count
    end
    for code, count in pairs(thread:get("codes") or {}) do
      by_code[code] = (by_code[code] or 0) + count
    end
    table.insert(per_thread, string.format("%d", thread:get("sent") or 0))
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  table.sort(parts)
  local code_parts = {}
  for code, count in pairs(by_code) do
    table.insert(code_parts, string.format('"%s":%d', code, count))
  end
  table.sort(code_parts)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"statuses":{%s},"codes":{%s},"requests":%d,"seconds":%.3f,"rps":%.1f,'
      .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"sent_per_thread":[%s]}\n',
    table.concat(parts, ","), table.concat(code_parts, ","), summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(per_thread, ",")
  ))
end

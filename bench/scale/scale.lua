-- wrk script of the scale bench: one case per run, chosen by environment variables.
--   BENCH_CASE  a case of bench/scale/cases.py (get, list, list_hot, list_deep, ...)
--   BENCH_KIT   directory written by bench/scale/kit.py
-- Answers that are not 2xx are counted by "status/error_code" (the LUNA code of the body);
-- done() prints one line "BENCH_RESULT {json}" that bench/api/load.py parses.

local case = os.getenv("BENCH_CASE")
local kit = os.getenv("BENCH_KIT")

local function lines(name)
  local found = {}
  for line in io.lines(kit .. "/" .. name) do found[#found + 1] = line end
  return found
end

local ids, owners = {}, {}
for _, line in ipairs(lines("ids.txt")) do
  local id, owner = line:match("^(%S+) (%S+)$")
  ids[#ids + 1] = id
  owners[#owners + 1] = owner
end
local accounts = lines("accounts.txt")
local hot = lines("hot.txt")[1]
local words = lines("words.txt")
local span = lines("span.txt")  -- first and last creation time, unix seconds
local first_time, last_time = tonumber(span[1]), tonumber(span[2])
local body = io.open(kit .. "/body.json", "rb"):read("*a")

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_no", #threads)
end

function init(_args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  codes = {}
end

local function any(list) return list[math.random(1, #list)] end

local function get(path, account)
  return wrk.format("GET", path, account and { ["Luna-Account-Id"] = account } or {})
end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

local builders = {
  get = function()
    local i = math.random(1, #ids)
    return get("/1/handlers/" .. ids[i], owners[i])
  end,
  list = function() return get("/1/handlers?page=1&page_size=10", any(accounts)) end,
  list_hot = function() return get("/1/handlers?page=1&page_size=100", hot) end,
  list_deep = function() return get("/1/handlers?page=1000&page_size=100", hot) end,
  count_hot = function() return get("/1/handlers/count", hot) end,
  count_all = function() return get("/1/handlers/count") end,
  search_hot = function() return get("/1/handlers?description=" .. any(words), hot) end,
  search_all = function() return get("/1/handlers?description=" .. any(words)) end,
  window = function()
    local from = math.random(first_time, last_time - 7 * 86400)
    return get("/1/handlers?create_time__gte=" .. iso(from) .. "&create_time__lt="
      .. iso(from + 7 * 86400))
  end,
  post = function()
    return wrk.format("POST", "/1/handlers", { ["Luna-Account-Id"] = any(accounts),
      ["Content-Type"] = "application/json" }, body)
  end,
  put = function()
    local i = math.random(1, #ids)
    return wrk.format("PUT", "/1/handlers/" .. ids[i], { ["Luna-Account-Id"] = owners[i],
      ["Content-Type"] = "application/json" }, body)
  end,
}
request = assert(builders[case], "BENCH_CASE")

function response(status, _headers, answer)
  if status >= 300 then
    local key = status .. "/" .. (answer and answer:match('"error_code":%s*(%d+)') or "-")
    codes[key] = (codes[key] or 0) + 1
  end
end

function done(summary, latency, _requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("codes") or {}) do
      total[key] = (total[key] or 0) + count
    end
  end
  local parts = {}
  for key, count in pairs(total) do parts[#parts + 1] = string.format('"%s": %d', key, count) end
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, '
    .. '"p99_us": %d, "status_errors": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "codes": {%s}}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect, e.read, e.write,
    e.timeout, table.concat(parts, ", ")))
end

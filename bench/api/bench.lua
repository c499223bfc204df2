-- wrk script of the API bench: one (flavor, case) per run, chosen by environment variables.
--   BENCH_FLAVOR  rest (luna-handlers and the thin floor: same URLs) | graphql (PostGraphile)
--   BENCH_CASE    get | post | put | list
--   BENCH_KIT     directory written by bench/api/data.py (ids.txt, accounts.txt, bodies)
-- done() prints one line "BENCH_RESULT {json}" that bench/api/load.py parses.

local flavor = os.getenv("BENCH_FLAVOR")
local case = os.getenv("BENCH_CASE")
local kit = os.getenv("BENCH_KIT")

local function slurp(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local ids, owners, accounts = {}, {}, {}
for line in io.lines(kit .. "/ids.txt") do
  local id, owner = line:match("^(%S+) (%S+)$")
  ids[#ids + 1] = id
  owners[#owners + 1] = owner
end
for line in io.lines(kit .. "/accounts.txt") do
  accounts[#accounts + 1] = line
end
local rest_body = slurp(kit .. "/body.json")
local policies_string = slurp(kit .. "/policies_string.json")  -- a JSON string literal

-- Threads get distinct seeds, else every thread would walk the same "random" ids.
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
end

function init(_args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
end

local function uuid4()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 65535), r(0, 65535),
    r(0, 65535), r(0, 4095), r(0, 16383) + 32768, r(0, 65535), r(0, 65535), r(0, 65535))
end

local function pick()
  local i = math.random(1, #ids)
  return ids[i], owners[i]
end

-- REST: luna-handlers and the floor -------------------------------------------------------

local rest = {}

function rest.get()
  local id, owner = pick()
  return wrk.format("GET", "/1/handlers/" .. id, { ["Luna-Account-Id"] = owner })
end

function rest.list()
  local account = accounts[math.random(1, #accounts)]
  return wrk.format("GET", "/1/handlers?page=1&page_size=10", { ["Luna-Account-Id"] = account })
end

function rest.put()
  local id, owner = pick()
  return wrk.format("PUT", "/1/handlers/" .. id,
    { ["Luna-Account-Id"] = owner, ["Content-Type"] = "application/json" }, rest_body)
end

function rest.post()
  local account = accounts[math.random(1, #accounts)]
  return wrk.format("POST", "/1/handlers",
    { ["Luna-Account-Id"] = account, ["Content-Type"] = "application/json" }, rest_body)
end

-- GraphQL: PostGraphile over the same table -----------------------------------------------

local GQL = dofile(kit .. "/graphql.lua")  -- written by bench/api/load.py
local GQL_HEADERS = { ["Content-Type"] = "application/json" }

local function graphql(query, variables)
  local body = '{"query":"' .. query .. '","variables":{' .. variables .. '}}'
  return wrk.format("POST", "/graphql", GQL_HEADERS, body)
end

local gql = {}

function gql.get()
  return graphql(GQL.get, '"id":"' .. pick() .. '"')
end

function gql.list()
  return graphql(GQL.list, '"acc":"' .. accounts[math.random(1, #accounts)] .. '"')
end

function gql.put()
  local id = pick()
  return graphql(GQL.put, '"id":"' .. id .. '","d":"bench handler","p":' .. policies_string
    .. ',"t":"' .. os.date("!%Y-%m-%dT%H:%M:%SZ") .. '"')
end

function gql.post()
  local account = accounts[math.random(1, #accounts)]
  return graphql(GQL.post, '"h":{"handlerId":"' .. uuid4() .. '","accountId":"' .. account
    .. '","description":"bench handler","policies":' .. policies_string
    .. ',"isDynamic":false}')
end

local builders = assert(({ rest = rest, graphql = gql })[flavor], "BENCH_FLAVOR")
request = assert(builders[case], "BENCH_CASE")

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, '
    .. '"p99_us": %d, "status_errors": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status, e.connect, e.read, e.write, e.timeout))
end

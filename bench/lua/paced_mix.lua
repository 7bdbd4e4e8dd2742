-- The 90/10 mix of mix.lua, paced: each connection waits BENCH_DELAY_MS between requests, so
-- the soak runs at a chosen share of the maximum rate instead of flat out.
local thread_ids = 0
local counter = 0
id = 0

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("id", thread_ids)
end

local function json_headers()
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/json"
  return headers
end

function delay()
  return BENCH_DELAY_MS
end

function request()
  counter = counter + 1
  local pick = counter % 10
  if pick == 0 then
    local body = string.format(
      '{"article":{"title":"Soak %d %d %d","description":"soak","body":"Body.","tagList":["soak"]}}',
      id, counter, math.random(1000000))
    return wrk.format("POST", "/api/articles", json_headers(), body)
  elseif pick < 5 then
    return wrk.format("GET", "/api/articles?limit=20")
  elseif pick < 8 then
    return wrk.format("GET", "/api/articles/BENCH_SLUG")
  else
    return wrk.format("GET", "/api/articles/BENCH_SLUG/comments")
  end
end

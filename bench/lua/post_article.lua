-- POST /api/articles with a distinct title per request (thread id + counter), so every
-- request creates a new article instead of colliding on one slug. The token comes from -H.
local thread_ids = 0
local counter = 0
id = 0

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("id", thread_ids)
end

-- wrk.format replaces wrk.headers when given headers: merge them by hand.
local function json_headers()
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/json"
  return headers
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"article":{"title":"Load %d %d %d","description":"written by the load test","body":"Some body text for the load test.","tagList":["load","tag%d"]}}',
    id, counter, math.random(1000000), counter % 20)
  return wrk.format("POST", "/api/articles", json_headers(), body)
end

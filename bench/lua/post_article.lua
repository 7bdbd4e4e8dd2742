-- POST /api/articles with a distinct title per request (thread id + counter), so every
-- request creates a new article instead of colliding on one slug. The token comes from -H.
function request()
  counter = counter + 1
  local body = string.format(
    '{"article":{"title":"Load %d %d %d","description":"written by the load test","body":"Some body text for the load test.","tagList":["load","tag%d"]}}',
    id, counter, math.random(1000000), counter % 20)
  return wrk.format("POST", "/api/articles", json_headers(), body)
end

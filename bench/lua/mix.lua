-- A 90/10 read/write mix: 9 in 10 requests read (the article list, one article, its comments),
-- 1 in 10 publishes an article. BENCH_SLUG is substituted by bench/run.py; the token comes
-- from -H. The soak runs this same script with a delay() appended.
function request()
  counter = counter + 1
  local pick = counter % 10
  if pick == 0 then
    local body = string.format(
      '{"article":{"title":"Mix %d %d %d","description":"mixed load","body":"Body.","tagList":["mix"]}}',
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

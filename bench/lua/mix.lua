-- A 90/10 read/write mix: 9 in 10 requests read (the article list, one article, its comments),
-- 1 in 10 publishes an article. BENCH_SLUG is substituted by bench/run.py; the token comes
-- from -H. The soak runs this same script with a delay() appended and, unless asked to let the
-- data grow, `steady = true`: then the write tenth favorites and unfavorites BENCH_SLUG in turn,
-- real write transactions that leave the database the same size, so memory drift shows leaks
-- rather than growing data.
function request()
  counter = counter + 1
  local pick = counter % 10
  if pick == 0 and steady then
    local method = (counter % 20 == 0) and "POST" or "DELETE"
    return wrk.format(method, "/api/articles/BENCH_SLUG/favorite", json_headers())
  elseif pick == 0 then
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

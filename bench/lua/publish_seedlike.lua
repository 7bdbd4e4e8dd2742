-- POST /api/articles with an article shaped like `conduit seed`'s (bench/publish_cost.py): a
-- title of 5 words, a description of 8, a body of 6 sentences of 12 words, 2 tags, from the
-- seed's 50 words, so the search index has as much to do per article as in the seeded data.
-- The title carries the thread id and a counter, so every request creates a new article.
local words = {"rust", "async", "axum", "tokio", "sqlite", "postgres", "cache", "index", "query",
  "latency", "memory", "thread", "future", "trait", "macro", "borrow", "lifetime", "crate", "module"}

local function some(n)
  local out = {}
  for i = 1, n do out[i] = words[math.random(#words)] end
  return table.concat(out, " ")
end

function request()
  counter = counter + 1
  local sentences = {}
  for i = 1, 6 do sentences[i] = some(12) .. "." end
  local body = string.format(
    '{"article":{"title":"%s %d %d","description":"%s","body":"%s","tagList":["%s","%s"]}}',
    some(3), id, counter, some(8), table.concat(sentences, " "), words[math.random(#words)], words[math.random(5)])
  return wrk.format("POST", "/api/articles", json_headers(), body)
end

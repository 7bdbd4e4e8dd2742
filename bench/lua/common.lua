-- Prepended by bench/run.py to every scenario script: thread ids for distinct titles, and
-- request headers that keep the token given with -H. (wrk.format replaces wrk.headers when
-- given headers, so they are merged by hand.)
local thread_ids = 0
counter = 0
id = 0

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("id", thread_ids)
end

function json_headers()
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/json"
  return headers
end

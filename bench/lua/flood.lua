-- A flood of registrations and wrong logins, each request from its own address (a botnet behind
-- the trusted proxy 127.0.0.1): bench/attacks.py --sustained runs it beside token reads. Answers
-- are 201, 401, 429 or, past the hashing queue, 503 at once.
local thread_ids = 0
local counter = 0
local id = 0

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("id", thread_ids)
end

function request()
  counter = counter + 1
  local n = id * 100000000 + counter
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  if counter % 2 == 0 then
    local body = string.format('{"user":{"username":"flood%d","email":"flood%d@example.com","password":"password123"}}', n, n)
    return wrk.format("POST", "/api/users", headers, body)
  end
  return wrk.format("POST", "/api/users/login", headers, '{"user":{"email":"reader@example.com","password":"a guess"}}')
end

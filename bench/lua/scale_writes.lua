-- Writes at scale (bench/scale.py): each request is one write by one of several logged-in
-- users, so concurrent writers do real work instead of repeating one user's no-op. scale.py
-- appends TOKENS (users' tokens), SLUGS (articles spread over the whole table), USERS
-- (usernames to follow) and MODE:
--   favorite      favorite or unfavorite a random article (each user's own toggle)
--   favorite_one  favorite or unfavorite SLUGS[1], all users on the one article
--   follow        follow or unfollow a random user
--   comment       comment on a random article
local toggled = {}

function request()
  counter = counter + 1
  -- The two threads take alternate users, so they never toggle the same user's state.
  local user = ((counter * 2 + id) % #TOKENS) + 1
  local headers = json_headers()
  headers["Authorization"] = "Token " .. TOKENS[user]
  local path, body, key
  if MODE == "favorite" or MODE == "favorite_one" then
    local slug = MODE == "favorite_one" and SLUGS[1] or SLUGS[math.random(#SLUGS)]
    path, key = "/api/articles/" .. slug .. "/favorite", user .. " " .. slug
  elseif MODE == "follow" then
    local name = USERS[math.random(#USERS)]
    path, key = "/api/profiles/" .. name .. "/follow", user .. " " .. name
  elseif MODE == "comment" then
    body = string.format('{"comment":{"body":"A comment from the load test, %d %d."}}', id, counter)
    return wrk.format("POST", "/api/articles/" .. SLUGS[math.random(#SLUGS)] .. "/comments", headers, body)
  end
  local method = toggled[key] and "DELETE" or "POST"
  toggled[key] = not toggled[key]
  return wrk.format(method, path, headers, body)
end

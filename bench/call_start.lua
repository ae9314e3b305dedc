-- wrk: call starts. POST PATH_ (default /api/v1/token) with a unique room per
-- request (RUN tag + thread + counter), rotating over the API keys in KEYS
-- (comma-separated). EXTRA is appended to the JSON body (e.g. ',"no_agent":true').
-- ROOM_FIELD names the room field ("room" for /token, "name" for /rooms).
local threads = {}
local n = 0

function setup(thread)
  n = n + 1
  thread:set("tid", n)
  table.insert(threads, thread)
end

local keys = {}
for k in string.gmatch(os.getenv("KEYS") or "", "[^,]+") do table.insert(keys, k) end
local extra = os.getenv("EXTRA") or ""
local path = os.getenv("PATH_") or "/api/v1/token"
local field = os.getenv("ROOM_FIELD") or "room"
local run = os.getenv("RUN") or "r"
local counter = 0

request = function()
  counter = counter + 1
  local key = keys[(counter % #keys) + 1]
  local room = run .. "-" .. tostring(tid) .. "-" .. counter
  local body
  if field == "room" then
    body = '{"identity":"caller","room":"' .. room .. '"' .. extra .. '}'
  else
    body = '{"' .. field .. '":"' .. room .. '"' .. extra .. '}'
  end
  return wrk.format("POST", path, { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, body)
end

-- wrk: a project's other requests while its LiveKit creates stall (bench/stalled.sh):
-- GET /api/v1/project, POST /api/v1/agents, POST /api/v1/token (no_agent), in turn.
local n = 0
local key = os.getenv("KEY")
local run = os.getenv("RUN") or "warm"
request = function()
  n = n + 1
  local h = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }
  local k = n % 3
  if k == 0 then
    return wrk.format("GET", "/api/v1/project", h)
  elseif k == 1 then
    return wrk.format("POST", "/api/v1/agents", h, '{"name":"agent ' .. run .. ' ' .. n .. '"}')
  end
  return wrk.format("POST", "/api/v1/token", h,
    '{"identity":"u' .. n .. '","room":"side","no_agent":true}')
end

-- wrk: POST /livekit/webhook with the signed events of the file in EVENTS
-- (bench/livekit_webhooks.py: "<Authorization>\t<body>" per line). Thread t
-- of n sends lines t, t+n, t+2n, …; a thread that runs out starts over
-- (those repeats are duplicates, answered without a write: the report
-- counts them from the file's size).
local threads = {}
local n = 0

function setup(thread)
  n = n + 1
  thread:set("tid", n)
  table.insert(threads, thread)
end

local events = {}
local i = 0

function init(args)
  local total = tonumber(os.getenv("THREADS") or "2")
  local k = 0
  for line in io.lines(os.getenv("EVENTS")) do
    if k % total == tid - 1 then
      local tab = string.find(line, "\t", 1, true)
      table.insert(events, { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) })
    end
    k = k + 1
  end
end

request = function()
  i = i + 1
  local e = events[((i - 1) % #events) + 1]
  return wrk.format("POST", "/livekit/webhook",
    { ["Content-Type"] = "application/webhook+json", ["Authorization"] = e[1] }, e[2])
end

-- wrk: transcript lines spread over 100 rooms (bench-0 … bench-99).
local key = os.getenv("KEY")
local counter = 0
request = function()
  counter = counter + 1
  local room = "bench-" .. (counter % 100)
  local body = '{"speaker":"user","content":"I would like to change the billing address on my account please","timestamp_ms":' .. counter .. '}'
  return wrk.format("POST", "/api/v1/sessions/" .. room .. "/transcript",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, body)
end

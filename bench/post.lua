-- wrk: POST a JSON body (BODY env) with an API key (KEY env).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("KEY")
if key and #key > 0 then wrk.headers["X-API-Key"] = key end

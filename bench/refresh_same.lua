-- wrk script for bench/run.sh: POST /api/token/refresh/ with the same refresh
-- token every time, a static body (for a stateless refresh, which accepts a
-- token again until it expires: FastAPI's peer in bench/peers/).
--
-- Usage: wrk ... -s bench/refresh_same.lua URL -- REFRESH_TOKEN
-- URL is the server's root; the token goes into the JSON body as it is.

function init(args)
  local token = args[1]
  if not token or token == "" then
    error("usage: wrk ... -s bench/refresh_same.lua URL -- REFRESH_TOKEN")
  end
  wrk.method = "POST"
  wrk.path = "/api/token/refresh/"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"refresh":"' .. token .. '"}'
end

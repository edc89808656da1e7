-- wrk script for bench/run.sh: password logins, POST /api/token/ with a JSON
-- body, every request the same (each costs the server one password hash).
--
-- Usage: wrk -t T -c C -s bench/login.lua URL -- USERNAME PASSWORD
-- URL is the server's root; the path is /api/token/. USERNAME and PASSWORD
-- are put in the JSON body as they are (no quotes or backslashes in them).

function init(args)
  local username, password = args[1], args[2]
  if not (username and password) then
    error("usage: wrk ... -s bench/login.lua URL -- USERNAME PASSWORD")
  end
  wrk.method = "POST"
  wrk.path = "/api/token/"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"username":"' .. username .. '","password":"' .. password .. '"}'
end

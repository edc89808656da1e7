-- wrk script for bench/instances.sh: POST /api/token/refresh/ with rotation,
-- every refresh token presented exactly once.
--
-- Usage: wrk -t T -c C -s bench/refresh.lua URL -- TOKENS_FILE T
-- TOKENS_FILE holds one refresh token per line, one per connection (C lines),
-- each from its own login. Thread i (1-based) takes lines i, i+T, i+2T, ...
--
-- wrk's Lua API does not say which connection a request() or response() call
-- is for, so each thread keeps its tokens in a queue: request() takes the
-- oldest token, response() puts the rotated token the answer carries back.
-- A token enters the queue only once the answer to its predecessor has
-- arrived, so each chain (one login) has at most one refresh in flight and
-- each token is sent once, as with one chain per connection: the server sees
-- the same thing, only the chain may move from one connection of the thread
-- to another between two requests.
--
-- Only 200 answers carrying a refresh token count as successes. A chain whose
-- refresh failed is lost; a request that finds the queue empty sends a token
-- the server refuses (401), so a lost chain keeps counting as failures and
-- cannot pass unnoticed. done() prints "refresh_ok N", "refresh_failed N" and
-- "refresh_ok_per_s X" for the script that runs wrk.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  -- wrk calls request() once on the first thread's state to check the
  -- request, and does not send it: that call must not take a token.
  thread:set("verify_pending", count == 1)
  table.insert(threads, thread)
end

local queue = {}
local head, tail = 1, 0
local headers = { ["Content-Type"] = "application/json" }
ok, failed = 0, 0

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if line ~= "" and (n - 1) % nthreads == id - 1 then
      tail = tail + 1
      queue[tail] = line
    end
  end
end

local function body_for(token)
  return '{"refresh":"' .. token .. '"}'
end

function request()
  local token
  if verify_pending then
    verify_pending = false
    token = "not-sent"
  elseif head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    token = "chain-lost"
  end
  return wrk.format("POST", "/api/token/refresh/", headers, body_for(token))
end

function response(status, _, body)
  local token = status == 200 and body:match('"refresh"%s*:%s*"([^"]+)"')
  if token then
    ok = ok + 1
    tail = tail + 1
    queue[tail] = token
  else
    failed = failed + 1
  end
end

function done(summary, _, _)
  local total_ok, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_failed = total_failed + thread:get("failed")
  end
  io.write(string.format("refresh_ok %d\n", total_ok))
  io.write(string.format("refresh_failed %d\n", total_failed))
  io.write(string.format("refresh_ok_per_s %.2f\n", total_ok / (summary.duration / 1e6)))
end

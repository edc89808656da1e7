-- wrk script for bench/run.sh: GET the URL's path with a different bearer
-- token on each request, round-robin over a file of tokens.
--
-- Usage: wrk -t T -c C -s bench/tokens.lua URL -- TOKENS_FILE
-- TOKENS_FILE holds one access token per line. Every thread goes through all
-- of them in order, thread i (1-based) starting at line i, so that threads
-- do not send the same token at the same time. The requests are formatted
-- once, in init(), so that formatting costs wrk nothing while it measures.

local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
end

local requests = {}
local next_index = 1

function init(args)
  local path = args[1]
  if not path then
    error("usage: wrk ... -s bench/tokens.lua URL -- TOKENS_FILE")
  end
  for line in io.lines(path) do
    if line ~= "" then
      requests[#requests + 1] =
        wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. line })
    end
  end
  if #requests == 0 then
    error("no tokens in " .. path)
  end
  next_index = ((id or 1) - 1) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

-- wrk script for the website benchmark. The request comes from the environment (set by
-- bench/run-bench.mjs, so that no cookie or password appears on a command line):
--   WRK_METHOD (GET), WRK_BODY (form body, for POST), WRK_COOKIE (Cookie header value).
-- It counts the status codes so that the report shows the requests did what was meant
-- (200 for pages, 303 for a successful login) rather than failing fast.
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local cookie = os.getenv("WRK_COOKIE") or ""
if cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do
      total[k] = (total[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(total) do
    table.insert(parts, k .. "×" .. v)
  end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end

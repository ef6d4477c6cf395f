-- wrk script for POST /login: the same visitor cookie, CSRF token and credentials on every
-- request (run-bench fills in __BODY__ and __COOKIE__), and a count of the status codes so
-- the report shows that the logins succeeded (303) rather than failed fast.
wrk.method = "POST"
wrk.body = "__BODY__"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local cookie = "__COOKIE__"
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
    table.insert(parts, k .. "x" .. v)
  end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end

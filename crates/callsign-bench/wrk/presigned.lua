-- wrk script sending callsign-bench's pre-signed requests, one after another, round robin.
--
--   callsign-bench presign --scenario issue-token --users 64 > /tmp/issue.tsv
--   wrk -t1 -c16 -d5s -s crates/callsign-bench/wrk/presigned.lua http://127.0.0.1:8080 -- /tmp/issue.tsv
--
-- Each line of the file is: method, path, x-ms-date, x-ms-content-sha256, Authorization, body,
-- separated by tabs. The signatures cover the Host header wrk sends, so the URL given to wrk must
-- name the endpoint exactly as the connection string given to `presign` does (same host, same
-- port), and the server accepts them for its clock skew (5 minutes) after `presign` ran.

local requests = {}
local count = 0
local next_index = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s presigned.lua URL -- FILE (from callsign-bench presign)")
  end
  for line in io.lines(path) do
    local f = split(line)
    if #f >= 5 then
      local headers = {}
      if f[3] ~= "" then
        headers["x-ms-date"] = f[3]
        headers["x-ms-content-sha256"] = f[4]
        headers["Authorization"] = f[5]
      end
      local body = f[6]
      if body ~= nil and body ~= "" then
        headers["Content-Type"] = "application/json"
      else
        body = nil
      end
      count = count + 1
      requests[count] = wrk.format(f[1], f[2], headers, body)
    end
  end
  if count == 0 then
    error("no requests in " .. path)
  end
  -- Threads start at different requests, so that they do not all send the same one.
  next_index = math.random(count) - 1
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

-- PATCH /api/leads/<id>/ of another lead each request (status and a custom field), from a
-- file of ids (one per line).
--   wrk … -s bench/wrk/patch.lua http://host -- <token> <ids file>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local statuses = { "assigned", "in_process", "qualified", "recycled" }
local ids, next_id
local count = 0

function init(args)
  common.authorize(args)
  ids, next_id = common.ids(args[2])
end

function request()
  next_id = next_id % #ids + 1
  count = count + 1
  local body = string.format(
    '{"status": "%s", "custom_fields": {"bant_score": %d}}',
    statuses[count % #statuses + 1], count % 101)
  return wrk.format("PATCH", "/api/leads/" .. ids[next_id] .. "/", nil, body)
end

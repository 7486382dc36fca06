-- GET /api/leads/<id>/, another lead each request, from a file of ids (one per line).
--   wrk … -s bench/wrk/detail.lua http://host -- <token> <ids file>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local ids, next_id

function init(args)
  common.authorize(args)
  ids, next_id = common.ids(args[2])
end

function request()
  next_id = next_id % #ids + 1
  return wrk.format("GET", "/api/leads/" .. ids[next_id] .. "/")
end

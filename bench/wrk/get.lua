-- GET of the URL given to wrk (a list with its query), the same request every time.
--   wrk … -s bench/wrk/get.lua http://host/api/leads/?page=3 -- <token>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  common.authorize(args)
end

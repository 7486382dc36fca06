-- POST /api/leads/: a new lead each request, its email unique to the run (an argument),
-- the thread and the request, assigned to a member (a profile id), with tags and custom
-- fields.
--   wrk … -s bench/wrk/create.lua http://host -- <token> <run> <assignee profile id>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")
local industries = { "saas", "retail", "energy", "health", "finance", "media", "logistics" }
local run, assignee
local count = 0

function init(args)
  common.authorize(args)
  run, assignee = args[2], args[3]
end

function request()
  count = count + 1
  local body = string.format(
    '{"title": "Bench lead %d", "first_name": "Bench", "last_name": "Lead %d", '
      .. '"email": "bench-%s-%d-%d@example.com", "phone": "+1 555 %07d", '
      .. '"company_name": "Company %d", "status": "new", "assigned_to": "%s", '
      .. '"tags": ["hot", "trade-fair"], '
      .. '"custom_fields": {"industry": "%s", "bant_score": %d}}',
    count, count, run, thread_number, count, count % 10000000, count % 3000, assignee,
    industries[count % #industries + 1], count % 101)
  return wrk.format("POST", "/api/leads/", nil, body)
end

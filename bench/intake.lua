-- wrk script for the intake benchmark (issue 2): every request posts a
-- fixture-like ticket update to the generic connector with its own id, so
-- none is answered as a duplicate. Its status ("new") matches no rule.
--
--   wrk -t2 -c64 -d10s --latency -s bench/intake.lua http://127.0.0.1:18080
--
-- Non-2xx answers are counted by wrk as "Non-2xx or 3xx responses".

local counter = 0
local threads = {}
local prefix = "W" .. tostring(os.time())

local head = '{"type":"ticket.updated","id":"'
local tail = '","status":"new","priority":"high","subject":"Order 4711 has not arrived yet",' ..
  '"text":"Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the parcel is at the depot. Could you check what happened?",' ..
  '"tags":["shipping","vip"],"group":"support-tier-1","owner":"agent-17","channel":"email",' ..
  '"customer":{"name":"Ana Ruiz","email":"ana.ruiz@example.com","phone":"+34600111222"},' ..
  '"actor":{"type":"customer","id":"cust-5521","name":"Ana Ruiz"},' ..
  '"order_id":"4711","occurred_at":"2026-03-02T09:15:00Z"}'

local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local body = head .. prefix .. "-" .. tid .. "-" .. counter .. tail
  return wrk.format("POST", "/hooks/generic", headers, body)
end

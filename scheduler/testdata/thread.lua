-- ba.thread.run starts jobs in FIFO order; thread:run serialises its jobs.

function TestThreadRunFIFO()
  local order = {}
  for i = 1, 5 do
    ba.thread.run(function() order[#order + 1] = i end)
  end
  eq(#order, 0, "jobs start after the caller yields")
  waitfor(function() return #order == 5 end)
  eq(table.concat(order, ","), "1,2,3,4,5")
end

function TestThreadRunReturnsPending()
  local n1 = ba.thread.run(function() end)
  local n2 = ba.thread.run(function() end)
  eq(n2, n1 + 1)
end

function TestThreadJobsRunConcurrently()
  local log = {}
  for i = 1, 3 do
    ba.thread.run(function()
      log[#log + 1] = "s"
      ba.sleep(10)
      log[#log + 1] = "e"
    end)
  end
  waitfor(function() return #log == 6 end)
  eq(table.concat(log), "ssseee", "jobs overlap while parked")
end

function TestThreadCreateSerialises()
  local th = ba.thread.create()
  local log = {}
  th:run(function() log[#log + 1] = "a1" ba.sleep(20) log[#log + 1] = "a2" end)
  th:run(function() log[#log + 1] = "b1" ba.sleep(1) log[#log + 1] = "b2" end)
  th:run(function() error("c fails", 0) end)
  th:run(function() log[#log + 1] = "d" end)
  waitfor(function() return #log == 5 end)
  eq(table.concat(log, ","), "a1,a2,b1,b2,d")
end

function TestThreadJobErrorIsolated()
  local after = false
  ba.thread.run(function() error("job failed", 0) end)
  ba.thread.run(function() after = true end)
  waitfor(function() return after end)
end

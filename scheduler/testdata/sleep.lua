-- ba.sleep parks only the calling task; ba.clock is monotonic milliseconds.

function TestSleepOrdering()
  local order = {}
  local hs = {}
  for _, ms in ipairs({30, 10, 20, 0}) do
    hs[#hs + 1] = test.spawn(function()
      ba.sleep(ms)
      order[#order + 1] = ms
    end)
  end
  waitfor(function() return #order == 4 end)
  eq(table.concat(order, ","), "0,10,20,30")
  for _, h in ipairs(hs) do eq(h.err, nil) end
end

function TestSleepDuration()
  local t0 = ba.clock()
  ba.sleep(30)
  local dt = ba.clock() - t0
  assert(dt >= 29, "slept only " .. dt .. " ms")
  assert(dt < 3000, "slept " .. dt .. " ms")
end

function TestSleepReturnsNothing()
  eq(select("#", ba.sleep(0)), 0)
end

function TestSleepDoesNotBlockOthers()
  local ticks = 0
  local h = test.spawn(function()
    for _ = 1, 5 do ba.sleep(2) ticks = ticks + 1 end
  end)
  ba.sleep(1)
  waitfor(function() return h.done end)
  eq(ticks, 5)
end

function TestSleepOutsideTaskRaises()
  local ok, err = test.nontask(function() ba.sleep(1) end)
  eq(ok, false)
  assert(err:find("not inside a task"), err)
end

function TestSleepBadArgument()
  local ok, err = pcall(ba.sleep, "x")
  eq(ok, false)
  assert(err:find("number expected"), err)
end

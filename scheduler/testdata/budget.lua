-- A runaway task is stopped by the run budget; everything else continues.

function TestBudgetStopsRunaway()
  local ticks = 0
  local t = ba.timer(function() ticks = ticks + 1 return true end)
  t:set(5)
  ba.sleep(20)
  local before = ticks
  local h = test.spawn(function()
    ba.sleep(1)
    while true do end
  end)
  waitfor(function() return h.done end, 5000)
  assert(h.err and h.err:find("budget"), tostring(h.err))
  assert(test.stats().budgetkills >= 1)
  local at = ticks
  waitfor(function() return ticks >= at + 3 end)
  assert(ticks > before)
  t:cancel()
end

function TestBudgetNotFooledByPcall()
  local h = test.spawn(function()
    while true do
      pcall(function() while true do end end)
    end
  end)
  waitfor(function() return h.done end, 5000)
  assert(h.err and h.err:find("budget"), tostring(h.err))
end

function TestBudgetInUserCoroutine()
  local h = test.spawn(function()
    local co = coroutine.wrap(function() while true do end end)
    co()
  end)
  waitfor(function() return h.done end, 5000)
  assert(h.err and h.err:find("budget"), tostring(h.err))
end

function TestBudgetResetsPerSlice()
  -- many short slices adding up to more than the budget are fine
  local t0 = ba.clock()
  while ba.clock() - t0 < 500 do
    local x = 0
    for i = 1, 1000 do x = x + i end
    ba.sleep(0)
  end
end

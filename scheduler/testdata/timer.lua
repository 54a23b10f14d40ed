-- ba.timer: periodic, coroutine (yield) mode, cancel, reset, runNow, errors.

function TestTimerOneShot()
  local n = 0
  local t = ba.timer(function() n = n + 1 end)
  eq(t:set(10), true)
  waitfor(function() return n == 1 end)
  ba.sleep(40)
  eq(n, 1, "a callback returning nil does not repeat")
  eq(t:cancel(), nil, "nothing pending")
end

function TestTimerPeriodic()
  local n = 0
  local t0 = ba.clock()
  ba.timer(function()
    n = n + 1
    return n < 5
  end):set(10, true)
  waitfor(function() return n == 5 end)
  local dt = ba.clock() - t0
  assert(dt >= 45, "5 periods took " .. dt .. " ms")
  ba.sleep(30)
  eq(n, 5, "stopped after returning false")
end

function TestTimerYieldStateMachine()
  local states = {}
  local t = ba.timer(function()
    states[#states + 1] = "on"
    coroutine.yield(true)
    states[#states + 1] = "off"
    coroutine.yield(true)
    states[#states + 1] = "on2"
    -- returning nil stops the timer
  end)
  t:set(5)
  waitfor(function() return #states == 3 end)
  ba.sleep(20)
  eq(table.concat(states, ","), "on,off,on2")
end

function TestTimerYieldFalseKeepsCoroutine()
  local step = 0
  local t = ba.timer(function()
    step = 1
    coroutine.yield(false) -- stop, but keep the coroutine suspended
    step = 2
  end)
  t:set(5)
  waitfor(function() return step == 1 end)
  ba.sleep(20)
  eq(step, 1, "timer stopped")
  t:set(5) -- resumes where it left off
  waitfor(function() return step == 2 end)
end

function TestTimerCancel()
  local n = 0
  local t = ba.timer(function() n = n + 1 return true end)
  t:set(20)
  eq(t:cancel(), true)
  eq(t:cancel(), nil)
  ba.sleep(50)
  eq(n, 0)
end

function TestTimerReset()
  local fired
  local t0 = ba.clock()
  local t = ba.timer(function() fired = ba.clock() end)
  eq(t:reset(10), nil, "not armed")
  t:set(1000)
  eq(t:reset(20), true)
  waitfor(function() return fired end)
  local dt = fired - t0
  assert(dt >= 19 and dt < 3000, "fired after " .. dt .. " ms")
end

function TestTimerRunNow()
  local n = 0
  local t = ba.timer(function() n = n + 1 return n < 3 end)
  eq(t:set(10, false, true), true, "ran and asked to continue")
  eq(n, 1, "ran synchronously")
  waitfor(function() return n == 3 end)
  local t2 = ba.timer(function() end)
  eq(t2:set(10, false, true), false, "did not ask to continue")
  eq(t2:cancel(), nil, "not armed")
end

function TestTimerErrorDisables()
  local t = ba.timer(function() error("tick failed", 0) end)
  t:set(1)
  ba.sleep(30)
  local ok, err = pcall(t.set, t, 10)
  eq(ok, false)
  assert(err:find("Timer callback failed"), err)
  assert(err:find("tick failed"), err)
  local ok2 = pcall(t.cancel, t)
  eq(ok2, false)
end

function TestTimerCallbackMaySleep()
  local n = 0
  ba.timer(function()
    ba.sleep(5) -- parks the timer's task; decided when it returns
    n = n + 1
    return n < 2
  end):set(5)
  waitfor(function() return n == 2 end)
end

function TestTimerManyArmed()
  local n = 0
  for i = 1, 1000 do
    ba.timer(function() n = n + 1 end):set(i % 20)
  end
  waitfor(function() return n == 1000 end)
  waitfor(function() return test.stats().timers == 0 end)
end

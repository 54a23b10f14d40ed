-- Yields (parks) across the scheduler's pcall/xpcall, nested pcall, generic
-- for iterators and user coroutines; Lua 5.1 pcall/xpcall result shapes.

function TestPcallYieldReturnsValues()
  local ok, a, b = pcall(function(x)
    ba.sleep(5)
    return x, "two"
  end, "one")
  eq(ok, true, "ok")
  eq(a, "one", "a")
  eq(b, "two", "b")
end

function TestPcallResultCounts()
  eq(select("#", pcall(function() end)), 1, "no results")
  eq(select("#", pcall(function() return nil end)), 2, "one nil")
  eq(select("#", pcall(function() return 1, nil, 3 end)), 4, "three")
  eq(select("#", pcall(function() ba.sleep(1) end)), 1, "no results after yield")
  eq(select("#", pcall(function() ba.sleep(1) return nil, nil end)), 3, "two nils after yield")
end

function TestPcallErrorAfterYield()
  local ok, err = pcall(function()
    ba.sleep(5)
    error("boom")
  end)
  eq(ok, false, "ok")
  assert(tostring(err):find("boom"), "message: " .. tostring(err))
end

function TestPcallErrorValueKept()
  local e = {code = 42}
  local ok, err = pcall(function() ba.sleep(1) error(e) end)
  eq(ok, false)
  eq(err, e, "table error value is the same object")
  local ok2, err2 = pcall(error, nil)
  eq(ok2, false)
  eq(err2, nil, "error(nil)")
end

function TestPcallErrorLevelZero()
  local ok, err = pcall(function() error("plain", 0) end)
  eq(ok, false)
  eq(err, "plain")
end

function TestPcallNonFunction()
  local ok, err = pcall(42)
  eq(ok, false)
  assert(err:find("attempt to call a number value"), err)
  local callable = setmetatable({}, {__call = function(self, a) ba.sleep(1) return a * 2 end})
  local ok2, v = pcall(callable, 21)
  eq(ok2, true)
  eq(v, 42)
end

function TestNestedPcallYields()
  local log = {}
  local ok, r = pcall(function()
    local ok2, r2 = pcall(function()
      ba.sleep(2)
      log[#log + 1] = "inner"
      local ok3, err3 = pcall(function() ba.sleep(2) error("deep", 0) end)
      eq(ok3, false)
      eq(err3, "deep")
      return "inner-ret"
    end)
    eq(ok2, true)
    eq(r2, "inner-ret")
    ba.sleep(2)
    log[#log + 1] = "outer"
    return "outer-ret"
  end)
  eq(ok, true)
  eq(r, "outer-ret")
  eq(table.concat(log, ","), "inner,outer")
end

function TestXpcallHandlerGetsError()
  local seen
  local ok, v = xpcall(function()
    ba.sleep(2)
    error("bad", 0)
  end, function(e) seen = e return "handled:" .. e end)
  eq(ok, false)
  eq(seen, "bad")
  eq(v, "handled:bad")
end

function TestXpcallSuccessAndYield()
  local ok, a, b = xpcall(function() ba.sleep(2) return 1, 2 end, function(e) return e end)
  eq(ok, true)
  eq(a, 1)
  eq(b, 2)
end

function TestXpcallHandlerErrors()
  local ok, v = xpcall(function() error("first", 0) end, function(e) error("second", 0) end)
  eq(ok, false)
  eq(v, "second")
end

local function lines(list)
  local i = 0
  return function()
    i = i + 1
    ba.sleep(1) -- parks inside an iterator called by a generic for
    return list[i]
  end
end

function TestIteratorYieldsInGenericFor()
  local out = {}
  for v in lines({"a", "b", "c"}) do
    out[#out + 1] = v
  end
  eq(table.concat(out), "abc")
end

function TestIteratorYieldsInsidePcall()
  local ok, n = pcall(function()
    local n = 0
    for k, v in function(_, k) ba.sleep(1) if k < 3 then return k + 1, k * 10 end end, nil, 0 do
      n = n + k
      local fs = {}
      fs[#fs + 1] = function() return k end -- fresh local per iteration
      eq(fs[1](), k)
    end
    return n
  end)
  eq(ok, true)
  eq(n, 6)
end

function TestGenericForBreakAndStdIterators()
  local sum = 0
  for i, v in ipairs({1, 2, 3, 4}) do
    if i == 3 then break end
    sum = sum + v
  end
  eq(sum, 3)
  local keys = 0
  for k in pairs({a = 1, b = 2}) do keys = keys + 1 end
  eq(keys, 2)
  local words = {}
  for w in string.gmatch("one two", "%a+") do words[#words + 1] = w end
  eq(#words, 2)
end

function TestUserCoroutinesStillWork()
  local gen = coroutine.wrap(function(a)
    local b = coroutine.yield(a + 1)
    ba.sleep(1) -- a park inside the user's coroutine passes to the scheduler
    local c = coroutine.yield(b + 1)
    return c + 1
  end)
  eq(gen(1), 2)
  eq(gen(10), 11)
  eq(gen(100), 101)

  local co = coroutine.create(function(x)
    local ok, y = pcall(function() return coroutine.yield(x * 2) end)
    eq(ok, true)
    return y + 1
  end)
  local ok1, v1 = coroutine.resume(co, 5)
  eq(ok1, true)
  eq(v1, 10)
  eq(coroutine.status(co), "suspended")
  local ok2, v2 = coroutine.resume(co, 7)
  eq(ok2, true)
  eq(v2, 8)
  eq(coroutine.status(co), "dead")
  local ok3, err3 = coroutine.resume(co)
  eq(ok3, false)
  assert(err3:find("dead"), err3)
end

function TestCoroutineErrorReported()
  local co = coroutine.create(function() ba.sleep(1) error("in co", 0) end)
  local ok, err = coroutine.resume(co)
  eq(ok, false)
  eq(err, "in co")
  local w = coroutine.wrap(function() error("in wrap", 0) end)
  local ok2, err2 = pcall(w)
  eq(ok2, false)
  eq(err2, "in wrap")
end

function TestInvalidYieldEndsTask()
  local h = test.spawn(function()
    coroutine.yield("not allowed")
    error("must not continue")
  end)
  waitfor(function() return h.done end)
  assert(h.err and h.err:find("invalid yield"), tostring(h.err))
  assert(test.stats().invalidyields >= 1)
end

function TestYieldFromMetamethodIsAnError()
  local t = setmetatable({}, {__index = function() ba.sleep(1) return 1 end})
  local ok, err = pcall(function() return t.x end)
  eq(ok, false)
  assert(tostring(err):find("yield across"), tostring(err))
  local ok2, err2 = pcall(table.sort, {3, 2, 1}, function(a, b) ba.sleep(1) return a < b end)
  eq(ok2, false)
  assert(tostring(err2):find("yield across"), tostring(err2))
end

function TestCurrentTaskSeenInsideNesting()
  -- ba.sleep finds the task from pcall children and user coroutines alike.
  local co = coroutine.wrap(function()
    return pcall(function()
      for _ in lines({1}) do ba.sleep(1) end
      return "ok"
    end)
  end)
  local ok, v = co()
  eq(ok, true)
  eq(v, "ok")
end

function TestTailCalledPark()
  local function f() return ba.sleep(1) end
  eq(select("#", f()), 0)
  local function g(x) ba.sleep(1) return x end
  local function h(x) return g(x) end
  eq(h(5), 5)
  local t = test.spawn(function() return ba.sleep(1) end)
  waitfor(function() return t.done end)
  eq(t.err, nil)
end

function TestDeepRecursionIsAnError()
  local function r(n) return 1 + r(n + 1) end
  local ok, err = pcall(r, 1)
  eq(ok, false)
  assert(tostring(err):find("overflow"), tostring(err))
  local ok2, err2 = pcall(unpack, {}, 1, 1e7)
  eq(ok2, false)
  assert(err2:find("too many results"), err2)
  eq(select("#", unpack({}, 1, 7999)), 7999)
  eq(select("#", unpack({1, 2, 3})), 3)
end

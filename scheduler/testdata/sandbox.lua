-- The sandbox: what is absent, what is capped.

function TestDangerousGlobalsAbsent()
  eq(io, nil, "io")
  eq(debug, nil, "debug")
  eq(dofile, nil, "dofile")
  eq(loadfile, nil, "loadfile")
  eq(os.execute, nil, "os.execute")
  eq(os.exit, nil, "os.exit")
  eq(os.remove, nil, "os.remove")
  eq(os.rename, nil, "os.rename")
  eq(os.tmpname, nil, "os.tmpname")
  eq(os.setlocale, nil, "os.setlocale")
  eq(os.getenv, nil, "os.getenv")
  eq(package.loadlib, nil, "package.loadlib")
  eq(channel, nil, "channel")
  eq(type(os.time()), "number")
  eq(type(os.clock()), "number")
  eq(type(os.date("%Y")), "string")
end

function TestRequireOnlyPreloaded()
  local ok, err = pcall(require, "os_no_such_module")
  eq(ok, false)
  package.preload.mymod = function() return {v = 7} end
  eq(require("mymod").v, 7)
end

function TestStringRepCapped()
  eq(("ab"):rep(3), "ababab")
  eq(string.rep("a", 3, ","), "a,a,a")
  eq(string.rep("x", 0), "")
  local ok, err = pcall(string.rep, "x", 1e9)
  eq(ok, false)
  assert(err:find("limit"), err)
  local ok2, err2 = pcall(function() return ("xx"):rep(16 * 1024 * 1024) end)
  eq(ok2, false)
  assert(err2:find("limit"), err2)
end

function TestFormatWidthCapped()
  eq(string.format("%5d|%-3s|%.2f", 42, "a", 1.5), "   42|a  |1.50")
  local ok, err = pcall(string.format, "%999999999d", 1)
  eq(ok, false)
  assert(err:find("too long"), err)
  -- Go's argument indexes would shift fmt's directives against the check
  -- ("%[%%7000A" is a 7000-wide field to fmt).
  for _, f in ipairs{"%[%%7000A", "%[1]d", "%5.2[1]f"} do
    local ok3, err3 = pcall(string.format, f, 1)
    eq(ok3, false)
    assert(err3:find("not supported"), err3)
  end
end

function TestConcatCapped()
  local big = string.rep("x", 8 * 1024 * 1024)
  local ok, err = pcall(table.concat, {big, big, big})
  eq(ok, false)
  assert(err:find("limit"), err)
  eq(table.concat({1, "a", 2}, "-"), "1-a-2")
end

function TestLoadStringYieldsInFor()
  local f = assert(loadstring([[
    local out = {}
    for v in function(_, i) ba.sleep(1) if i < 3 then return i + 1 end end, nil, 0 do
      out[#out + 1] = v
    end
    return table.concat(out)
  ]]))
  eq(f(), "123")
  local g = load(function() local s = "return 5" ; return nil end)
  local chunks = {"return ", "5"}
  local i = 0
  local h = assert(load(function() i = i + 1 return chunks[i] end))
  eq(h(), 5)
  local bad, msg = loadstring("return +")
  eq(bad, nil)
  assert(type(msg) == "string")
end

function TestCollectGarbageLimited()
  assert(collectgarbage("count") > 0)
  eq(collectgarbage(), 0)
end

function TestStringRepHugeCount()
  local ok, err = pcall(string.rep, "x", 2^53)
  eq(ok, false)
  assert(err:find("limit"), err)
  eq(string.rep("", 1e9), "")
end

function TestGsubCapped()
  eq((string.gsub("hello world", "o", "0")), "hell0 w0rld")
  eq(select(2, string.gsub("aaa", "a", "%0%0")), 3)
  eq((string.gsub("abc", "%w", "%0%0", 2)), "aabbc")
  local big = string.rep("y", 1024 * 1024)
  local ok, err = pcall(string.gsub, string.rep("x", 64), ".", big)
  eq(ok, false)
  assert(err:find("limit"), err)
  local r = string.gsub(string.rep("x", 64), "z", big) -- no match: fine
  eq(#r, 64)
  eq(#(string.gsub(string.rep("x", 8), ".", big)), 8 * 1024 * 1024)
end

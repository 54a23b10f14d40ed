-- ba.socket over real loopback sockets: server side through req2sock,
-- client side through wsconnect/connect, both driven as cosockets.

-- A WebSocket echo written the BAS way.
serve("/echo", function(request)
  local s = ba.socket.req2sock(request)
  if s then
    s:event(function(s)
      while true do
        local d, text = s:read()
        if not d then break end
        s:write(d, text)
      end
    end, "s")
  end
end)

-- A WebSocket that never answers.
serve("/silent", function(request)
  local s = ba.socket.req2sock(request)
  s:event(function(s) while s:read() do end end, "s")
end)

-- Broadcast from a timer to every socket kept in a table (BAS's page.sockets).
local sockets = {}
serve("/bcast", function(request)
  local s = ba.socket.req2sock(request)
  s:event(function(s)
    sockets[s] = true
    while s:read() do end
    sockets[s] = nil
  end, "s")
end)

function TestEchoTextAndBinary()
  local s = assert(ba.socket.wsconnect(URL .. "/echo"))
  eq(s:websocket(), true)
  assert(s:write("hello", true))
  local d, text = s:read(3000)
  eq(d, "hello"); eq(text, true)
  assert(s:write("\0\1\2"))
  d, text = s:read(3000)
  eq(d, "\0\1\2"); eq(text, false)
  local big = string.rep("x", 100000)
  assert(s:write(big))
  eq(s:read(3000), big)
  -- write(data, i, j) sends a substring
  assert(s:write("abcdef", 2, 4))
  eq(s:read(3000), "bcd")
  eq(s:close(), true)
  eq(s:close(), false)
end

function TestReadTimeoutIsNotFatal()
  local s = assert(ba.socket.wsconnect(URL .. "/echo"))
  local t0 = ba.clock()
  local d, err = s:read(80)
  eq(d, nil); eq(err, "timeout")
  assert(ba.clock() - t0 >= 75, "timeout came early")
  assert(s:write("after timeout"))
  eq(s:read(3000), "after timeout")
  s:close()
end

function TestPeerCloseGivesSocketClosedAndCode()
  local got
  serve("/closer", function(request)
    local s = ba.socket.req2sock(request)
    s:event(function(s) s:close() end, "s")
  end)
  local s = assert(ba.socket.wsconnect(URL .. "/closer"))
  local d, err, code = s:read(3000)
  eq(d, nil); eq(err, "socketclosed"); eq(code, 1000)
  local ok = pcall(s.read, s) -- the second read on a dead socket raises, as in BAS
  eq(ok, false)
end

function TestYieldInsidePcallAndXpcall()
  local s = assert(ba.socket.wsconnect(URL .. "/echo"))
  local ok, d = pcall(function()
    s:write("in pcall")
    return s:read(3000)
  end)
  eq(ok, true); eq(d, "in pcall")
  local ok2, err = pcall(function()
    s:write("then fail")
    s:read(3000)
    error("boom")
  end)
  eq(ok2, false); assert(tostring(err):find("boom"), tostring(err))
  local ok3, msg = xpcall(function()
    s:write("x"); s:read(3000)
    error("xp")
  end, function(e) return "handled: " .. tostring(e) end)
  eq(ok3, false); assert(msg:find("handled: "), msg)
  -- nested pcall with a yield in the inner one
  local ok4, v = pcall(function()
    return select(2, pcall(function() s:write("nested"); return s:read(3000) end))
  end)
  eq(ok4, true); eq(v, "nested")
  s:close()
end

function TestYieldInsideIterator()
  local s = assert(ba.socket.wsconnect(URL .. "/echo"))
  for i = 1, 3 do s:write("m" .. i) end
  local function messages(sock, n)
    local i = 0
    return function()
      i = i + 1
      if i > n then return nil end
      return (sock:read(3000))
    end
  end
  local got = {}
  for m in messages(s, 3) do got[#got + 1] = m end
  eq(table.concat(got, ","), "m1,m2,m3")
  s:close()
end

function TestDisableEnablePassesValues()
  local got
  local w = ba.socket.event(function(sock)
    got = { sock:disable() }
  end)
  assert(w, "event returned nil for a parked cosocket")
  eq(w:state(), "disabled")
  eq(w:enable(42, "x"), false) -- it ended after resuming
  eq(got[1], 42); eq(got[2], "x")
end

function TestQueueWorkerPattern()
  local queue, done = {}, {}
  local worker = ba.socket.event(function(sock)
    while true do
      while #queue > 0 do done[#done + 1] = table.remove(queue, 1) end
      if sock:disable() ~= true then break end
    end
  end)
  for i = 1, 3 do
    queue[#queue + 1] = i
    worker:enable(true)
  end
  eq(#done, 3)
  worker:enable(false) -- ends the worker
end

function TestGetsock()
  eq(ba.socket.getsock(), nil)
  local inside
  local s = ba.socket.event(function(sock)
    inside = (ba.socket.getsock() == sock)
    pcall(function() inside = inside and ba.socket.getsock() == sock end)
    sock:disable()
  end)
  eq(inside, true)
  s:enable()
end

function TestConnectToLocalServer()
  local result
  ba.socket.event(function(sock)
    local s = assert(ba.socket.connect("127.0.0.1", echo.port))
    eq(s, sock, "connect inside an unconnected cosocket attaches to it")
    eq(s:owner(), true)
    s:write("raw bytes")
    local buf = ""
    while #buf < 9 do buf = buf .. assert(s:read(3000)) end
    result = buf
  end)
  waitfor(function() return result ~= nil end)
  eq(result, "raw bytes")
  local s, err = ba.socket.connect("127.0.0.1", 1)
  eq(s, nil); eq(err, "cannotconnect")
end

function TestTimerBroadcastToCosockets()
  local clients = {}
  for i = 1, 3 do clients[i] = assert(ba.socket.wsconnect(URL .. "/bcast")) end
  waitfor(function() local n = 0; for _ in pairs(sockets) do n = n + 1 end; return n == 3 end)
  ba.timer(function()
    for s in pairs(sockets) do assert(s:write("tick", true)) end
  end):set(10, true)
  for i = 1, 3 do
    local d, text = clients[i]:read(3000)
    eq(d, "tick"); eq(text, true)
    clients[i]:close()
  end
end

function TestWriteBackpressure()
  local writer_done, written = false, 0
  local chunk = string.rep("z", 65536)
  local w = ba.socket.event(function(sock)
    local s = assert(ba.socket.connect("127.0.0.1", sink.port))
    for i = 1, 2000 do
      assert(s:write(chunk))
      written = written + #chunk
    end
    writer_done = true
  end)
  -- The peer does not read: the cosocket writer is suspended, not refused.
  local ok, err = pcall(waitfor, function() return w:state() == "write" end)
  assert(ok, "writer never suspended: state " .. tostring(w:state()) .. ", written " .. written .. ", done " .. tostring(writer_done))
  assert(not writer_done)
  -- A non-cosocket writer (a timer) gets nil, queuedBytes instead, at the
  -- latest once its own write has filled the queue past queuelen.
  local r1, r2
  ba.timer(function()
    for i = 1, 10 do
      r1, r2 = w:write(chunk)
      if not r1 then break end
    end
  end):set(1, true)
  waitfor(function() return r2 ~= nil end)
  eq(r1, nil); assert(type(r2) == "number" and r2 >= 16384, tostring(r2))
  -- Once the peer reads, the writer resumes and finishes.
  sink.drain()
  local ok2 = pcall(waitfor, function() return writer_done end, 10000)
  assert(ok2, "writer did not finish after the drain: state " .. tostring(w:state()) .. ", written " .. written)
  eq(written, 2000 * 65536)
end

function TestRunawayCosocketIsStopped()
  local s = ba.socket.event(function(sock)
    ba.sleep(1) -- park once, then spin
    while true do end
  end)
  assert(s)
  waitfor(function() return s:state() == "terminated" end, 5000)
  -- the VM keeps serving
  local c = assert(ba.socket.wsconnect(URL .. "/echo"))
  c:write("alive"); eq(c:read(3000), "alive"); c:close()
end

function TestBindAndAccept()
  local ls = assert(ba.socket.bind(0, { intf = "127.0.0.1" }))
  local _, port = ls:sockname()
  ls:event(function(ls)
    while true do
      local s = ls:accept()
      if not s then break end
      s:event(function(s)
        local d = s:read()
        if d then s:write("echo:" .. d) end
      end, "s")
    end
  end, "r")
  local c = assert(ba.socket.connect("127.0.0.1", port))
  c:write("hi")
  eq(c:read(3000), "echo:hi")
  c:close()
  ls:close()
end

function TestStat()
  local total, active = ba.socket.stat()
  assert(total >= active and active >= 0)
end

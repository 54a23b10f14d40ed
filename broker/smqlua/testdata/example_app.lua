-- The example app's SMQ part (examples/www/.preload and smq.lsp), driven
-- by a Go SMQ client as the browser pages and the Go device would.
local app = loadapp("../../examples/www/.preload")
serve("/smq.lsp", function(request) app.smq:connect(request) end)

function TestHelloFiveMessages()
  local c = assert(smqc.dial(WSURL .. "/smq.lsp", {uid = "hello-page-1"}))
  local t0 = ba.clock()
  assert(c:publish("hi there", "hello"))
  for i = 1, 5 do
    local data, ptid, tid = c:recv(3000)
    eq(data, string.format("Hello %d of 5 (you said: hi there)", i))
    eq(ptid, 1, "from the server's ETID")
    eq(tid, c:etid(), "to the publisher's ETID")
  end
  local ms = ba.clock() - t0
  assert(ms >= 3900 and ms < 6000, "five messages one second apart, took " .. ms .. " ms")
  local extra = c:recv(300)
  eq(extra, nil, "exactly five")
  c:close()
end

function TestHelloStopsWhenClientLeaves()
  local c = assert(smqc.dial(RAWURL .. "/smq.lsp", {uid = "hello-page-2", raw = true}))
  assert(c:publish("bye", "hello"))
  eq(c:recv(3000), "Hello 1 of 5 (you said: bye)")
  c:close()
  -- The timer sees 0 recipients on its next run and ends (no error logged).
end

function TestChatAnnouncesJoins()
  local a = assert(smqc.dial(WSURL .. "/smq.lsp", {uid = "chat-page-1"}))
  assert(a:subscribe("chat"))
  local data, ptid = a:recv()
  eq(ptid, 1)
  local v = data
  assert(v:find('"members":1') and v:find('"nick":"server"'), v)
  assert(a:publish('{"nick":"Åse","text":"hei 🐟"}', "chat"))
  data, ptid = a:recv()
  eq(data, '{"nick":"Åse","text":"hei 🐟"}', "UTF-8 passes through unchanged")
  eq(ptid, a:etid())
  a:close()
end

function TestDeviceReadingsKept()
  local d = assert(smqc.dial(RAWURL .. "/smq.lsp", {uid = "device-lua-1", raw = true, sendhttp = true}))
  assert(d:publish('{"uid":"device-lua-1","seq":7,"temp":21.5}', "device/readings"))
  waitfor(function() return app.devices["device-lua-1"] end)
  local r = app.devices["device-lua-1"]
  eq(r.seq, 7)
  eq(r.temp, 21.5)
  eq(r.etid, d:etid())
  d:close()
end

function Test404ForPlainRequest()
  eq(httpget(HTTPURL .. "/smq.lsp"), 404)
end

-- Lua tests of require"smq.hub" (run by smqlua_test.go; helpers there).
local hub = require"smq.hub"

-- ETIDs and TIDs are random 32-bit numbers: never use them as table keys
-- in gopher-lua (t[id] = v with id < 2^26 fills the array part up to id).
-- K makes a safe key.
function K(id) return "#" .. tostring(id) end

connected, closed, infos = {}, {}, {}

smq = hub.create{
  authenticate = function(cred, info)
    if cred == "bad" then return 3, "wrong password" end
    if cred == "nil" then return nil end
    if cred == "slow" then ba.sleep(20) end
    if cred == "boom" then error("hook exploded") end
    infos[info.uid] = info
    return 0
  end,
  permittop = function(topic, issub, peer)
    return topic ~= "forbidden"
  end,
  permitsubtop = function(subtopic, peer)
    return subtopic ~= "nosub"
  end,
  onconnect = function(etid, info, peer) connected[K(etid)] = {info = info, peer = peer} end,
  onclose = function(etid, sock, peer, err) closed[K(etid)] = err end,
}

serve("/smq", function(request)
  local ok, err = smq:connect(request, "myarg")
  connectResult = {ok, err}
end)

local function dial(op)
  local c, err, code = smqc.dial(WSURL .. "/smq", op)
  assert(c, err)
  return c
end

function TestConnectInfoAndClose()
  local c = dial{uid = "client-ws-1", info = "hello info", cred = "ok"}
  local etid = c:etid()
  assert(etid ~= 0 and etid ~= 1, "etid")
  waitfor(function() return connected[K(etid)] end)
  local info = connected[K(etid)].info
  eq(info, infos["client-ws-1"], "same info table for authenticate and onconnect")
  eq(info.arg, "myarg", "arg")
  eq(info.uid, "client-ws-1", "uid")
  eq(info.info, "hello info", "info")
  eq(type(info.seed), "number", "seed")
  eq(info.url, "/smq", "url")
  assert(info.header["Sec-Websocket-Key"], "header table")
  eq(type(info.data), "table", "data")
  local peer = smq:etid2peer(etid)
  eq(peer, connected[K(etid)].peer, "same peer table")
  eq(peer.tid, etid, "peer.tid")
  eq(peer.uid, "client-ws-1", "peer.uid")
  eq(peer.info, "hello info", "peer.info")
  c:close()
  waitfor(function() return closed[K(etid)] ~= nil end)
  eq(closed[K(etid)], 0, "onclose err for a client close")
  eq(smq:etid2peer(etid), nil, "peer gone")
end

function TestRequestResponseETID1()
  eq(smq:gettid(), 1)
  smq:subscribe("self", {onmsg = function(data, ptid, tid, subtid)
    eq(tid, 1, "sent to the server etid")
    ba.sleep(1) -- callbacks are tasks: they may park
    smq:publish("echo:" .. data, ptid)
  end})
  smq:subscribe("self", {subtopic = "cmd", onmsg = function(data, ptid, tid, subtid)
    smq:publish("cmd:" .. data, ptid, "reply")
  end})
  local c = dial{uid = "client-rr-1"}
  assert(c:publish("ping", 1))
  local data, ptid, tid, subtid = c:recv()
  eq(data, "echo:ping")
  eq(ptid, 1, "ptid is the server")
  eq(tid, c:etid(), "sent to the client's etid")
  eq(subtid, 0)
  assert(c:publish("go", 1, smq:createsub("cmd")))
  data, ptid, tid, subtid = c:recv()
  eq(data, "cmd:go")
  eq(subtid, smq:subtopic2tid("reply"))
  smq:unsubscribe("self")
  c:close()
end

function TestTopicPubSubRaw()
  for _, op in ipairs{{raw = true, sendhttp = true}, {raw = true, v2 = true}, {}} do
    op.uid = "client-raw-" .. tostring(op.raw) .. tostring(op.v2)
    local c = assert(smqc.dial((op.raw and RAWURL or WSURL) .. "/smq", op))
    local tid = assert(c:subscribe("news"))
    eq(smq:topic2tid("news"), tid)
    eq(smq:publish("hi", "news"), 1, "one recipient")
    local data, ptid, rtid = c:recv()
    eq(data, "hi")
    eq(ptid, 1)
    eq(rtid, tid)
    eq(smq:publish("by number", tid, "st"), 1)
    local data2, _, _, subtid = c:recv()
    eq(data2, "by number")
    eq(subtid, smq:subtopic2tid("st"))
    c:close()
  end
end

function TestPublishTableAsJSON()
  local c = dial{uid = "client-json-1"}
  assert(c:subscribe("json"))
  eq(smq:publish({a = 1, b = {1, 2, "x"}, s = "é\"", t = true}, "json"), 1)
  eq(c:recv(), '{"a":1,"b":[1,2,"x"],"s":"é\\"","t":true}')
  local ok = pcall(smq.publish, smq, {f = print}, "json")
  eq(ok, false, "a function cannot be encoded")
  ok = pcall(smq.publish, smq, string.rep("x", 0xFFF1), "json")
  eq(ok, false, "payload > 0xFFF0 raises")
  c:close()
end

function TestSubscribeJSONAndDefaultOnmsg()
  local got, dflt
  smq:subscribe("jt", {json = true, onmsg = function(v, ptid, tid) got = v end})
  smq:onmsg(function(data, ptid, tid, subtid) dflt = data end)
  local c = dial{uid = "client-json-2"}
  assert(c:publish('{"x":[1,2],"y":"z"}', "jt"))
  waitfor(function() return got end)
  eq(got.x[2], 2)
  eq(got.y, "z")
  assert(c:publish("not json", "jt"))
  waitfor(function() return dflt end)
  eq(dflt, "not json", "undecodable JSON goes to the default onmsg")
  dflt = nil
  assert(c:publish("direct", 1))
  waitfor(function() return dflt end)
  eq(dflt, "direct")
  smq:onmsg(nil)
  smq:unsubscribe("jt")
  c:close()
end

function TestAuthenticateRefuses()
  local c, err, code = smqc.dial(WSURL .. "/smq", {uid = "client-bad-1", cred = "bad"})
  eq(c, nil)
  eq(code, 3, "Connack code from authenticate")
  assert(err:find("wrong password"), err)
  c, err, code = smqc.dial(WSURL .. "/smq", {uid = "client-bad-2", cred = "nil"})
  eq(code, 6, "nil answer is access denied")
  c, err, code = smqc.dial(WSURL .. "/smq", {uid = "client-bad-3", cred = "boom"})
  eq(code, 2, "a failing hook refuses")
  -- A hook that parks still answers.
  c = dial{uid = "client-slow-1", cred = "slow"}
  c:close()
end

function TestPermitTopDenies()
  local c = dial{uid = "client-perm-1"}
  local tid, err = c:subscribe("forbidden")
  eq(tid, nil, "denied")
  assert(err:find("denied"), err)
  eq(smq:topic2tid("forbidden"), nil, "a denied name is not created")
  assert(c:subscribe("allowed"))
  tid, err = c:subscribe("allowed2", "nosub")
  eq(tid, nil, "permitsubtop denied")
  c:close()
end

function TestObserveCounts()
  local counts, names = {}, {}
  assert(smq:observe("obs", function(n, topic)
    counts[#counts + 1] = n
    names[#names + 1] = topic
  end))
  waitfor(function() return #counts == 1 end)
  eq(counts[1], 0, "initial count")
  eq(names[1], "obs")
  local c = dial{uid = "client-obs-1"}
  assert(c:subscribe("obs"))
  waitfor(function() return #counts == 2 end)
  eq(counts[2], 1)
  smq:subscribe("obs") -- the server counts too
  waitfor(function() return #counts == 3 end)
  eq(counts[3], 2)
  c:close()
  waitfor(function() return #counts == 4 end)
  eq(counts[4], 1)
  smq:unobserve("obs")
  smq:unsubscribe("obs")
  -- Observe a client ETID: 0 when it leaves.
  local c2 = dial{uid = "client-obs-2"}
  local gone
  smq:observe(c2:etid(), function(n, t) gone = {n, t} end)
  c2:close()
  waitfor(function() return gone end)
  eq(gone[1], 0)
  eq(gone[2], c2:etid())
  -- A client observing a topic the server subscribes to.
  local c3 = dial{uid = "client-obs-3"}
  -- The client must know the name (create), or it takes Change(tid, 0)
  -- for "peer gone" and drops its observer, as smq.js does.
  local otid = assert(c3:create("obs3"))
  eq(otid, smq:topic2tid("obs3"))
  c3:observe(otid)
  local t, n = c3:change()
  eq(t, otid)
  eq(n, 0)
  smq:subscribe("obs3")
  t, n = c3:change()
  eq(n, 1)
  c3:close()
end

function TestIsSMQAndQueryData()
  local isq
  serve("/isq", function(request) isq = hub.isSMQ(request) end)
  eq(httpget(HTTPURL .. "/isq"), 204)
  eq(isq, false)
  local c = assert(smqc.dial(WSURL .. "/smq?room=blue&x=1", {uid = "client-q-1"}))
  waitfor(function() return connected[K(c:etid())] end)
  local info = connected[K(c:etid())].info
  eq(info.data.room, "blue", "query data")
  eq(info.url, "/smq?room=blue&x=1", "url is the request URI")
  c:close()
end

function Test404WithoutSMQHeaders()
  connectResult = nil
  eq(httpget(HTTPURL .. "/smq"), 404)
  eq(connectResult[1], nil)
  eq(connectResult[2], "not an SMQ request")
end

function TestLookupsAndIterators()
  local tid = smq:create("lk")
  eq(smq:topic2tid("lk"), tid)
  eq(smq:tid2topic(tid), "lk")
  eq(smq:create("lk"), tid, "same name, same tid")
  eq(smq:create("pre", 12345), 12345, "pre-assigned tid")
  local st = smq:createsub("sub1")
  eq(smq:subtopic2tid("sub1"), st)
  eq(smq:tid2subtopic(st), "sub1")
  eq(smq:createsub(nil), 0)
  eq(smq:topic2tid("nope"), nil)
  eq(smq:tid2topic(7), nil)
  local found = false
  for id, name in smq:topics() do
    if name == "lk" then found = id == tid end
  end
  assert(found, "topics() iterates id, name")
  found = false
  for id, name in smq:subtopics() do
    if name == "sub1" then found = id == st end
  end
  assert(found, "subtopics()")
  local free, used = smq:queuesize()
  eq(free, 200)
  eq(used, 0)
  local c = dial{uid = "client-lk-1"}
  local seen = {}
  for etid, peer in smq:peers() do seen[K(etid)] = peer end
  assert(seen[K(1)], "server pseudo peer")
  assert(seen[K(c:etid())], "client peer")
  eq(seen[K(c:etid())].uid, "client-lk-1")
  eq(smq:sock2peer(nil), nil)
  assert(c:subscribe("lk"))
  local topics = smq:etid2peer(c:etid()).topics
  -- pairs, not topics[tid]: see K above and doc.go.
  local has = false
  for k, v in pairs(topics) do has = has or (k == tid and v == tid) end
  assert(has, "peer.topics has tid -> tid")
  smq:setkeepalive(100, 10)
  assert(tostring(smq):find("smq.hub broker"))
  c:close()
end

function TestShutdownOnePeer()
  local c = dial{uid = "client-sd-1"}
  local etid = c:etid()
  smq:shutdown("bye", etid)
  local why = c:closed()
  -- Should be Disconnect "bye"; the hub may close before that message is
  -- flushed (reported to the broker owner), so only the close is checked.
  assert(why, "closed")
  waitfor(function() return closed[K(etid)] ~= nil end)
  -- "sysshutdown" unless the client's own close reached the broker first
  -- (the hub sends Disconnect before it terminates the peer).
  assert(closed[K(etid)] ~= 0, "a shutdown is not a normal close")
end

function TestSameUIDTakeover()
  local a = dial{uid = "client-same-1"}
  local etid = a:etid()
  local b = dial{uid = "client-same-1"}
  eq(b:etid(), etid, "same etid")
  assert(a:closed():find("reconnect"))
  -- onclose should get "reconnect"; the hub sends Disconnect before it
  -- terminates the old peer, so the client's own close can win the race
  -- (reported to the broker owner). Only the call is checked.
  waitfor(function() return closed[K(etid)] ~= nil end)
  b:close()
end

function TestPubOn()
  local a = dial{uid = "client-po-a"}
  local b = dial{uid = "client-po-b"}
  eq(smq:pubon("hi", b:etid(), a:etid(), 0), true)
  local data, ptid, tid = b:recv()
  eq(data, "hi")
  eq(ptid, a:etid())
  eq(tid, b:etid())
  eq(smq:pubon("x", b:etid(), 1, 0), false, "fromtid must be a client")
  a:close()
  b:close()
end

function TestOnPublishAndOnDrop()
  local dropped
  local s2 = hub.create{
    rndtid = true,
    readtmo = 1000,
    onpublish = function(data, ptid, tid, subtid, peer)
      eq(peer.tid, ptid)
      return data ~= "blocked"
    end,
    ondrop = function(data, ptid, tid, subtid, peer) dropped = data end,
  }
  assert(s2:gettid() ~= 0)
  serve("/smq2", function(request) s2:connect(request) end)
  local c = assert(smqc.dial(WSURL .. "/smq2", {uid = "client-op-1"}))
  assert(c:subscribe("x"))
  assert(c:publish("blocked", "x"))
  assert(c:publish("ok", "x"))
  eq(c:recv(), "ok", "the blocked message was dropped by onpublish")
  assert(c:publish("nobody", "y"))
  waitfor(function() return dropped end)
  eq(dropped, "nobody")
  c:close()
  s2:shutdown()
end


-- maxhubtopics caps the names (topics + sub-topics) of the whole broker:
-- past it clients get denied acks and stay connected, the server-side
-- methods return nil, err, and known names keep working.
function TestMaxHubTopics()
  local s3 = hub.create{maxhubtopics = 3}
  serve("/smq3", function(request) s3:connect(request) end)
  local t1 = assert(s3:create("a"))
  local c = assert(smqc.dial(WSURL .. "/smq3", {uid = "client-mh-1"}))
  local tb = assert(c:subscribe("b"))
  local st = assert(s3:createsub("st"))
  -- Full: every way a new name would enter the table is refused.
  local tid, err = c:create("c-new")
  eq(tid, nil, "client create past the limit")
  assert(err:find("denied"), err)
  tid, err = c:subscribe("c-new2")
  eq(tid, nil, "client subscribe to a new name past the limit")
  tid, err = c:subscribe("b", "st-new")
  eq(tid, nil, "client createsub past the limit")
  for what, f in pairs{
    create = function() return s3:create("s-new") end,
    createsub = function() return s3:createsub("s-newsub") end,
    subscribe = function() return s3:subscribe("s-new2") end,
    subscribesub = function() return s3:subscribe("a", {subtopic = "s-newsub2", onmsg = function() end}) end,
    publish = function() return s3:publish("x", "s-new3") end,
    publishsub = function() return s3:publish("x", "a", "s-newsub3") end,
    observe = function() return s3:observe("s-new4", function() end) end,
  } do
    local v, e = f()
    eq(v, nil, what)
    eq(e, "broker: topic limit reached", what)
  end
  eq(s3:topic2tid("s-new"), nil, "nothing was created")
  -- Known names still work, and the client is still connected.
  eq(s3:create("a"), t1)
  eq(s3:createsub("st"), st)
  eq(c:create("b"), tb)
  eq(s3:subscribe("b"), tb)
  eq(s3:publish("still works", "b", "st"), 2)
  eq(c:recv(), "still works")
  c:close()
  s3:shutdown()
end

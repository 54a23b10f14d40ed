// Byte-level checks of smq.js against a scripted fake broker (a ws server in
// this process; no Go broker needed): run as node protocol.js -
//   * Connect v1 layout with uid, onauth credentials and info;
//   * every client message is a binary frame;
//   * Ping → Pong; Publish/Subscribe/Observe bytes;
//   * refused Connack → onclose(reason, false);
//   * Init version ≠ 1 and unknown message types → "protocol error", reconnect allowed;
//   * server Disconnect → onclose(reason, false).
"use strict";
const { SMQ, WebSocket, waitFor, assert, done, fail } = require("./lib");

const hex = (b) => Buffer.from(b).toString("hex");
const u32 = (n) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const INIT = [1, 1, ...u32(0x01020304), ...Buffer.from("127.0.0.1")];

// fakeBroker calls script(sock, received) for every connection; received
// collects the client's messages (all must be binary).
function fakeBroker(script) {
  return new Promise((resolve) => {
    const srv = new WebSocket.Server({ host: "127.0.0.1", port: 0 }, () => resolve(srv));
    srv.on("connection", (sock) => {
      const received = [];
      sock.on("message", (data, isBinary) => {
        if (!isBinary) fail("client sent a text frame");
        received.push(new Uint8Array(data));
      });
      script(sock, received);
    });
  });
}

const urlOf = (srv) => "ws://127.0.0.1:" + srv.address().port + "/smq";
const send = (sock, bytes) => sock.send(Uint8Array.from(bytes), { binary: true });

async function main() {
  // --- Handshake bytes, credentials, then messages both ways.
  let server;
  const srv1 = await fakeBroker((sock, rx) => { server = { sock, rx }; send(sock, INIT); });
  const c = SMQ.Client(urlOf(srv1), { uid: "uid-123", info: "hi ✓" });
  c.onauth = (seed, ip) => {
    assert.strictEqual(seed, 0x01020304);
    assert.strictEqual(ip, "127.0.0.1");
    return "secret";
  };
  let connected = null;
  c.onconnect = (etid, seed, ip) => { connected = [etid, seed, ip]; };
  await waitFor("connect message", () => server && server.rx.length === 1);
  const info = Buffer.from("hi ✓");
  assert.strictEqual(hex(server.rx[0]), hex([2, 1, 7, ...Buffer.from("uid-123"), 6, ...Buffer.from("secret"), ...info]));
  send(server.sock, [3, 0, ...u32(0xA1B2C3D4)]);
  await waitFor("onconnect", () => connected);
  assert.deepStrictEqual(connected, [0xA1B2C3D4, 0x01020304, "127.0.0.1"]);

  server.rx.length = 0;
  send(server.sock, [12]); // Ping
  await waitFor("pong", () => server.rx.length === 1);
  assert.strictEqual(hex(server.rx[0]), hex([13]));
  server.rx.length = 0;
  c.subscribe("chat");
  c.publish("hi", 0x11223344, 5);
  c.observe(0x55, () => {});
  await waitFor("client messages", () => server.rx.length === 3);
  assert.strictEqual(hex(server.rx[0]), hex([4, ...Buffer.from("chat")]));
  assert.strictEqual(hex(server.rx[1]), hex([8, ...u32(0x11223344), ...u32(0xA1B2C3D4), ...u32(5), 0x68, 0x69]));
  assert.strictEqual(hex(server.rx[2]), hex([14, ...u32(0x55)]));

  // Publish by name: Create first, then the publish with the acked TID.
  server.rx.length = 0;
  c.publish([1, 2], "news");
  await waitFor("create", () => server.rx.length === 1);
  assert.strictEqual(hex(server.rx[0]), hex([6, ...Buffer.from("news")]));
  send(server.sock, [7, 0, ...u32(77), ...Buffer.from("news")]);
  await waitFor("publish after create ack", () => server.rx.length === 2);
  assert.strictEqual(hex(server.rx[1]), hex([8, ...u32(77), ...u32(0xA1B2C3D4), ...u32(0), 1, 2]));
  assert.strictEqual(c.topic2tid("news"), 77);

  // Unknown message type → protocol error, reconnect allowed.
  let closed = null;
  c.onclose = (msg, can) => { closed = [msg, can]; };
  send(server.sock, [20, 0, 0]);
  await waitFor("protocol error close", () => closed);
  assert.deepStrictEqual(closed, ["protocol error", true]);
  srv1.close();

  // --- Refused Connack.
  const srv2 = await fakeBroker((sock, rx) => {
    send(sock, INIT);
    sock.on("message", () => send(sock, [3, 3, 0, 0, 0, 0, ...Buffer.from("bad")]));
  });
  const r = SMQ.Client(urlOf(srv2), { uid: "uid-refused" });
  closed = null;
  r.onclose = (msg, can) => { closed = [msg, can]; return 1000; };
  await waitFor("refused", () => closed);
  assert.deepStrictEqual(closed, ["bad", false]);
  assert.ok(!r._timer, "no reconnect after a refusal");
  srv2.close();

  // --- Init version 2 is rejected.
  const srv3 = await fakeBroker((sock) => send(sock, [1, 2, ...u32(1), ...Buffer.from("ip")]));
  const v = SMQ.Client(urlOf(srv3), { uid: "uid-version" });
  closed = null;
  v.onclose = (msg, can) => { closed = [msg, can]; };
  await waitFor("bad init version", () => closed);
  assert.deepStrictEqual(closed, ["protocol error", true]);
  srv3.close();

  // --- Server Disconnect with a reason: no reconnect.
  const srv4 = await fakeBroker((sock) => {
    send(sock, INIT);
    sock.once("message", () => {
      send(sock, [3, 0, ...u32(9)]);
      send(sock, [11, ...Buffer.from("go away")]);
    });
  });
  const d = new SMQ.Client(urlOf(srv4), { uid: "uid-disconnect", WebSocket: WebSocket });
  closed = null;
  d.onclose = (msg, can) => { closed = [msg, can]; return 1000; };
  await waitFor("server disconnect", () => closed);
  assert.deepStrictEqual(closed, ["go away", false]);
  assert.ok(!d._timer);
  srv4.close();

  // --- Default uid is the IP followed by the seed.
  let got = null;
  const srv5 = await fakeBroker((sock, rx) => { send(sock, INIT); sock.once("message", (m) => { got = new Uint8Array(m); }); });
  const u = SMQ.Client(urlOf(srv5));
  await waitFor("connect with default uid", () => got);
  const uid = Buffer.from("127.0.0.1" + 0x01020304);
  assert.strictEqual(hex(got), hex([2, 1, uid.length, ...uid, 0]));
  u.close();
  srv5.close();
  done();
}

main().catch(fail);

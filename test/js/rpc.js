// Request/response with the broker's server-side client at ETID 1. The Go
// test subscribes the server client and answers:
//   sub-topic "echo": replies "echo:" + text to the publisher, same sub-topic;
//   sub-topic "add":  JSON {a, b} → JSON {sum} to the publisher, same sub-topic;
//   sub-topic "news": publishes "news from server" to topic "srv-news".
// Then the script prints "SHUTDOWN <etid>" and the Go test shuts that client
// down with the reason "bye": onclose must get it with canreconnect false and
// no reconnect may follow.
"use strict";
const { url, waitFor, connect, Inbox, assert, done, fail } = require("./lib");

async function main() {
  const a = await connect({ uid: "node-rpc-client", info: "rpc" });

  const echo = new Inbox();
  a.subscribe("self", "echo", { datatype: "text", onmsg: echo.handler() });
  a.publish("ping ✓ ünïcode", 1, "echo");
  let [data, ptid, tid, subtid] = await echo.next("echo reply");
  assert.strictEqual(data, "echo:ping ✓ ünïcode");
  assert.strictEqual(ptid, 1);
  assert.strictEqual(tid, a.gettid());
  assert.strictEqual(subtid, a.subtopic2tid("echo"));

  const add = new Inbox();
  a.subscribe("self", "add", { datatype: "json", onmsg: add.handler() });
  a.pubjson({ a: 2, b: 3 }, 1, "add");
  [data, ptid] = await add.next("add reply");
  assert.deepStrictEqual(data, { sum: 5 });
  assert.strictEqual(ptid, 1);

  const news = new Inbox();
  await new Promise((r) => a.subscribe("srv-news", { datatype: "text", onmsg: news.handler(), onack: r }));
  a.publish("news please", 1, "news");
  [data, ptid, tid] = await news.next("server publish to topic");
  assert.strictEqual(data, "news from server");
  assert.strictEqual(ptid, 1);
  assert.strictEqual(tid, a.topic2tid("srv-news"));

  let closed = null, reconnected = false;
  a.onreconnect = () => { reconnected = true; };
  a.onclose = function (msg, canreconnect) {
    closed = [msg, canreconnect];
    return 1000; // must be ignored: a server Disconnect forbids reconnecting
  };
  console.log("SHUTDOWN " + a.gettid());
  await waitFor("server disconnect", () => closed, 10000);
  assert.deepStrictEqual(closed, ["bye", false]);
  assert.ok(!a._timer, "no reconnect scheduled");
  assert.ok(!reconnected);
  done();
}

main().catch(fail);

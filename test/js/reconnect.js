// Reconnect after the broker restarts on the same address.
//   node reconnect.js <url> keep   — cleanstart false: topics, sub-topics,
//        subscriptions ("self" moves to the new ETID) and named observers are
//        restored before onreconnect; a publish made while offline is queued.
//   node reconnect.js <url> clean  — cleanstart true: all state is gone and
//        only onreconnect runs; subscribing again works.
// The script prints "READY" when the Go test may stop the broker, and
// "RESTARTED" (informational) once reconnected.
"use strict";
const { SMQ, url, waitFor, Inbox, assert, done, fail } = require("./lib");

const mode = process.argv[3];
if (mode !== "keep" && mode !== "clean") fail("mode must be keep or clean");
const clean = mode === "clean";

async function main() {
  const c = new SMQ.Client(url, { uid: "node-reconnect-" + mode, cleanstart: clean });
  let connects = 0, reconnects = 0, closes = [];
  c.onconnect = () => { connects++; };
  c.onreconnect = (etid) => { reconnects++; assert.strictEqual(etid, c.gettid()); };
  c.onclose = (msg, canreconnect) => {
    closes.push([msg, canreconnect]);
    if (!clean) c.publish("sent while offline", "news"); // queued until reconnected
    return 500; // raised to the 1000 ms minimum
  };
  const news = new Inbox(), direct = new Inbox(), changes = new Inbox();
  c.subscribe("news", { datatype: "text", onmsg: news.handler() });
  c.subscribe("self", "direct", { datatype: "text", onmsg: direct.handler() });
  await waitFor("connect", () => connects === 1);
  await waitFor("subscriptions", () => c.topic2tid("news") && c.subtopic2tid("direct"));
  c.observe("news", changes.handler());
  let [count] = await changes.next("initial change");
  assert.strictEqual(count, 1);
  c.publish("before", "news");
  assert.strictEqual((await news.next("before"))[0], "before");

  console.log("READY");
  await waitFor("close", () => closes.length > 0, 10000);
  assert.strictEqual(closes[0][1], true, "a lost socket allows reconnecting");
  // The old broker may have sent Change(news, 0) while shutting down.
  changes.items.length = 0;
  await waitFor("reconnect", () => reconnects === 1, 15000);
  console.log("RESTARTED");
  assert.strictEqual(connects, 1, "onconnect only for the first connection");

  if (!clean) {
    // Restored before onreconnect: names resolved again on the new broker.
    assert.ok(c.topic2tid("news"), "news re-created");
    assert.ok(c.subtopic2tid("direct"), "direct re-created");
    assert.strictEqual((await news.next("offline publish"))[0], "sent while offline");
    c.publish("after", "news");
    assert.strictEqual((await news.next("after"))[0], "after");
    c.publish("to myself", c.gettid(), "direct");
    const [d, ptid, tid] = await direct.next("direct after reconnect");
    assert.deepStrictEqual([d, ptid, tid], ["to myself", c.gettid(), c.gettid()]);
    // The named observer was re-registered: the broker sent the count.
    [count] = await changes.next("re-observed change");
    assert.strictEqual(count, 1);
  } else {
    assert.strictEqual(c.topic2tid("news"), undefined, "clean start forgets topics");
    assert.strictEqual(c.subtopic2tid("direct"), undefined, "clean start forgets sub-topics");
    const again = new Inbox();
    await new Promise((r) => c.subscribe("news", { datatype: "text", onmsg: again.handler(), onack: r }));
    c.publish("fresh", "news");
    assert.strictEqual((await again.next("fresh"))[0], "fresh");
    assert.strictEqual(news.items.length, 0, "old callback not used");
    // The old "self" callback is gone too: the global onmsg gets it.
    const fallback = new Inbox();
    c.onmsg = fallback.handler();
    c.publish("direct fresh", c.gettid(), "direct");
    const [d, , tid] = await fallback.next("global onmsg");
    assert.strictEqual(SMQ.utf8.decode(d), "direct fresh");
    assert.strictEqual(tid, c.gettid());
    assert.strictEqual(direct.items.length, 0, "old self callback not used");
  }
  c.close();
  done();
}

main().catch(fail);

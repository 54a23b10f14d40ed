// Publish/subscribe over a real broker: queued calls before the first
// Connack, text/JSON/binary payloads, non-ASCII UTF-8, direct ETID messages
// with sub-topics, onack, observe (topic and ETID), disconnect.
"use strict";
const { SMQ, url, waitFor, connect, Inbox, assert, done, fail } = require("./lib");

const UNICODE = "héllo wörld ✓ – 日本語 😀";

async function main() {
  // --- Calls made before the first Connack are queued and run before onconnect.
  const early = new Inbox();
  const a = SMQ.Client(url, { uid: "node-pubsub-A", info: "A" }); // without new
  assert.ok(a instanceof SMQ.Client);
  a.subscribe("chat", { datatype: "text", onmsg: early.handler() });
  a.publish("queued " + UNICODE, "chat");
  let aEtidAtConnect = -1;
  await new Promise((resolve) => {
    a.onconnect = (etid, seed, ip) => {
      aEtidAtConnect = etid;
      assert.strictEqual(typeof seed, "number");
      assert.ok(ip.length > 0, "ipaddr");
      resolve();
    };
  });
  assert.ok(aEtidAtConnect > 0 && aEtidAtConnect === a.gettid(), "etid");
  let [data, ptid, tid, subtid] = await early.next("queued publish");
  assert.strictEqual(data, "queued " + UNICODE);
  assert.strictEqual(ptid, a.gettid());
  assert.strictEqual(tid, a.topic2tid("chat"));
  assert.strictEqual(a.tid2topic(tid), "chat");
  assert.strictEqual(subtid, 0);

  const b = await connect({ uid: "node-pubsub-B" });
  assert.notStrictEqual(b.gettid(), a.gettid());
  assert.ok(b.getsock(), "getsock");

  // --- Text with non-ASCII UTF-8, A subscribed, B publishes.
  b.publish(UNICODE, "chat");
  [data, ptid] = await early.next("text");
  assert.strictEqual(data, UNICODE);
  assert.strictEqual(ptid, b.gettid());

  // --- onack, JSON.
  const json = new Inbox();
  const acks = new Inbox();
  a.subscribe("json", { datatype: "json", onmsg: json.handler(), onack: acks.handler() });
  let [accepted, ackTopic, ackTid] = await acks.next("suback json");
  assert.strictEqual(accepted, true);
  assert.strictEqual(ackTopic, "json");
  assert.strictEqual(ackTid, a.topic2tid("json"));
  const value = { n: 42, s: UNICODE, list: [1, "two", null], nested: { ok: true } };
  b.pubjson(value, "json");
  [data] = await json.next("json");
  assert.deepStrictEqual(data, value);

  // --- Binary (Uint8Array and array of numbers) and a large payload.
  const bin = new Inbox();
  await new Promise((r) => a.subscribe("bin", { onmsg: bin.handler(), onack: r }));
  const bytes = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
  b.publish(bytes, "bin");
  [data] = await bin.next("binary");
  assert.ok(data instanceof Uint8Array);
  assert.deepStrictEqual(Array.from(data), Array.from(bytes));
  b.publish([9, 8, 7], "bin");
  [data] = await bin.next("array");
  assert.deepStrictEqual(Array.from(data), [9, 8, 7]);
  const big = new Uint8Array(60000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  b.publish(big, "bin");
  [data] = await bin.next("big binary");
  assert.strictEqual(data.length, big.length);
  assert.ok(Buffer.from(data).equals(Buffer.from(big)), "big payload intact");
  assert.throws(() => b.publish(new Uint8Array(0xfff1), "bin"), RangeError);

  // --- Direct ETID messages with sub-topics (request/response between clients).
  a.subscribe("self", "getStatus", {
    datatype: "text",
    onmsg: (d, from, t, st) => {
      assert.strictEqual(t, a.gettid());
      assert.strictEqual(st, a.subtopic2tid("getStatus"));
      a.publish("status:" + d, from, "statusReply");
    },
  });
  const replies = new Inbox();
  await new Promise((r) => b.subscribe("self", "statusReply", { datatype: "text", onmsg: replies.handler(), onack: r }));
  await waitFor("A's getStatus sub-topic", () => a.subtopic2tid("getStatus"));
  b.publish("q1 ✓", a.gettid(), "getStatus");
  [data, ptid, tid, subtid] = await replies.next("direct reply");
  assert.strictEqual(data, "status:q1 ✓");
  assert.strictEqual(ptid, a.gettid());
  assert.strictEqual(tid, b.gettid());
  assert.strictEqual(subtid, b.subtopic2tid("statusReply"));
  assert.strictEqual(b.tid2subtopic(subtid), "statusReply");

  // A sub-topic without a callback falls back to the global onmsg.
  const global = new Inbox();
  b.onmsg = global.handler();
  a.publish("stray", b.gettid(), "unregistered");
  [data, ptid, tid, subtid] = await global.next("global onmsg");
  assert.strictEqual(SMQ.utf8.decode(data), "stray");
  assert.strictEqual(tid, b.gettid());
  assert.strictEqual(subtid, a.subtopic2tid("unregistered"));

  // --- create / createsub.
  const created = await new Promise((r) => a.create("made", "madesub", function () { r(Array.from(arguments)); }));
  assert.strictEqual(created[0], true);
  assert.strictEqual(created[1], "made");
  assert.strictEqual(created[2], a.topic2tid("made"));
  assert.strictEqual(created[3], "madesub");
  assert.strictEqual(created[4], a.subtopic2tid("madesub"));
  const cs = await new Promise((r) => b.createsub("madesub", function () { r(Array.from(arguments)); }));
  assert.deepStrictEqual(cs, [true, "madesub", created[4]]); // one ID per name per broker

  // --- Observe a topic: initial count, then subscribe/unsubscribe changes.
  const changes = new Inbox();
  await new Promise((r) => a.create("watched", r));
  a.observe("watched", changes.handler());
  let [count, name] = await changes.next("initial change");
  assert.strictEqual(count, 0);
  assert.strictEqual(name, "watched");
  await new Promise((r) => b.subscribe("watched", { onack: r }));
  [count, name] = await changes.next("change after subscribe");
  assert.deepStrictEqual([count, name], [1, "watched"]);
  b.unsubscribe("watched");
  [count] = await changes.next("change after unsubscribe");
  assert.strictEqual(count, 0);
  a.unobserve("watched");
  assert.throws(() => a.observe("never-resolved", () => {}));

  // --- Unsubscribe stops delivery.
  a.unsubscribe("bin");
  b.publish([1], "bin");
  b.publish("after unsubscribe", "chat"); // chat still subscribed: barrier
  [data] = await early.next("chat after bin unsubscribe");
  assert.strictEqual(data, "after unsubscribe");
  assert.strictEqual(bin.items.length, 0, "no message after unsubscribe");

  // --- Observe an ETID; its disconnect gives Change(etid, 0).
  const c = await connect({ uid: "node-pubsub-C" });
  const cEtid = c.gettid();
  const gone = new Inbox();
  a.observe(cEtid, gone.handler());
  let closeArgs = null;
  c.onclose = function () { closeArgs = Array.from(arguments); };
  // Make sure the Observe reached the broker before C leaves: a Create ack
  // arrives after every earlier request of A was processed.
  await new Promise((r) => a.create("barrier", r));
  c.disconnect();
  [count, name] = await gone.next("etid change");
  assert.deepStrictEqual([count, name], [0, cEtid]);
  await waitFor("C onclose", () => closeArgs);
  assert.strictEqual(closeArgs[1], true, "disconnect() leaves reconnect allowed");

  a.close();
  b.close();
  done();
}

main().catch(fail);

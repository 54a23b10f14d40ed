// Interop with the Go client (broker/client) over the raw transport: the Go
// test waits for "READY <etid> <tid>", then its raw client publishes
// "from go ✓" to topic "interop" and sends "question" to this client's ETID
// with sub-topic "ask"; this script answers "answer:question" to the
// publisher's ETID with sub-topic "reply" and, when the Go side confirms by
// publishing "done" to "interop", exits.
"use strict";
const { connect, Inbox, assert, done, fail } = require("./lib");

async function main() {
  const c = await connect({ uid: "node-interop" });
  const topic = new Inbox();
  c.subscribe("self", "ask", {
    datatype: "text",
    onmsg: (d, ptid) => c.publish("answer:" + d, ptid, "reply"),
  });
  await new Promise((r) => c.subscribe("interop", { datatype: "text", onmsg: topic.handler(), onack: r }));
  await new Promise((r) => c.createsub("ask", r));
  await new Promise((r) => c.createsub("reply", r));
  console.log("READY " + c.gettid() + " " + c.topic2tid("interop"));
  let [data, ptid] = await topic.next("publish from Go", 10000);
  assert.strictEqual(data, "from go ✓");
  const goEtid = ptid;
  [data, ptid] = await topic.next("done from Go", 10000);
  assert.strictEqual(data, "done");
  assert.strictEqual(ptid, goEtid);
  c.close();
  done();
}

main().catch(fail);

// Pure-JS checks of SMQ.utf8, SMQ.wsURL and SMQ.websocket (no broker needed;
// run as: node utf8.js -).
"use strict";
const { SMQ, assert, done } = require("./lib");

const samples = ["", "ascii", "héllo", "✓ – 日本語", "😀 emoji 🎉", "\u0000\u007f\u0080\u07ff\u0800\uffff", "\ud83d\ude00"];
for (const s of samples) {
  const enc = SMQ.utf8.encode(s);
  assert.ok(enc instanceof Uint8Array);
  assert.ok(Buffer.from(enc).equals(Buffer.from(s, "utf8")), "encode " + JSON.stringify(s));
  assert.strictEqual(SMQ.utf8.length(s), Buffer.byteLength(s, "utf8"));
  assert.strictEqual(SMQ.utf8.decode(enc), s);
  const dst = new Uint8Array(enc.length + 3);
  assert.strictEqual(SMQ.utf8.encode(s, dst, 3), enc.length + 3);
}
// Lone surrogates encode as U+FFFD; malformed bytes decode as U+FFFD.
assert.strictEqual(SMQ.utf8.decode(SMQ.utf8.encode("a\ud800b")), "a\ufffdb");
assert.strictEqual(SMQ.utf8.decode(new Uint8Array([0x61, 0xff, 0x62])), "a\ufffdb");
assert.strictEqual(SMQ.utf8.decode(new Uint8Array([0xe2, 0x9c])), "\ufffd");
assert.strictEqual(SMQ.utf8.decode(new Uint8Array([0xc0, 0x80])), "\ufffd"); // overlong
assert.strictEqual(SMQ.utf8.decode(new Uint8Array([0x68, 0x69, 0x21]), 1, 2), "i");

// wsURL against a fake page location.
function withLocation(href, fn) {
  const u = new URL(href);
  globalThis.location = { href: u.href, protocol: u.protocol, host: u.host, pathname: u.pathname, search: u.search };
  try { fn(); } finally { delete globalThis.location; }
}
withLocation("http://example.test:8080/app/page.lsp", () => {
  assert.strictEqual(SMQ.wsURL(), "ws://example.test:8080/app/page.lsp");
  assert.strictEqual(SMQ.wsURL("broker.lsp"), "ws://example.test:8080/app/broker.lsp");
  assert.strictEqual(SMQ.wsURL("/smq.lsp"), "ws://example.test:8080/smq.lsp");
  assert.strictEqual(SMQ.wsURL("../up/x"), "ws://example.test:8080/up/x");
  assert.strictEqual(SMQ.wsURL("ws://other/x"), "ws://other/x");
});
withLocation("https://secure.test/dir/", () => {
  assert.strictEqual(SMQ.wsURL("smq"), "wss://secure.test/dir/smq");
});
assert.throws(() => SMQ.wsURL("x"), /location/);
assert.strictEqual(SMQ.websocket(), true);
done();

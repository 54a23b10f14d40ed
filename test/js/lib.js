// Shared helpers for the Node tests of broker/smqjs/smq.js.
// Each test script is run by broker/smqjs/smqjs_node_test.go as
//   node test/js/<script>.js <ws-url> [args...]
// and reports through its exit status (0 = pass). Lines on stdout starting
// with an upper-case word (READY, ...) are signals to the Go test.
"use strict";

const path = require("path");
const assert = require("assert");

let WebSocket;
try {
  WebSocket = require("ws");
} catch (e) {
  console.error("the ws package is missing: run npm install --no-audit --no-fund in the repository root");
  process.exit(2);
}
const SMQ = require(path.join(__dirname, "..", "..", "broker", "smqjs", "smq.js"));
SMQ.WebSocket = WebSocket;

const url = process.argv[2];
if (!url) {
  console.error("usage: node " + path.basename(process.argv[1]) + " <ws-url>");
  process.exit(2);
}

// A whole script must finish in time; the Go test has its own deadline too.
const overall = setTimeout(() => fail("script timed out"), Number(process.env.SMQ_TEST_TIMEOUT_MS || 20000));
overall.unref();

function fail(msg) {
  console.error("FAIL: " + (msg && msg.stack ? msg.stack : msg));
  process.exit(1);
}
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

// waitFor polls cond until it is truthy (never a bare sleep).
function waitFor(what, cond, ms) {
  ms = ms || 5000;
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    (function poll() {
      let v;
      try { v = cond(); } catch (e) { return reject(e); }
      if (v) return resolve(v);
      if (Date.now() > end) return reject(new Error("timeout waiting for " + what));
      setTimeout(poll, 5);
    })();
  });
}

// connect creates a client and resolves with it after onconnect.
function connect(opt) {
  return new Promise((resolve, reject) => {
    const c = SMQ.Client(url, opt || {});
    c.onconnect = () => resolve(c);
    c.onclose = (msg) => reject(new Error("closed before connect: " + msg));
  });
}

// inbox collects messages and lets a test await the next one.
class Inbox {
  constructor() { this.items = []; }
  push() { this.items.push(Array.from(arguments)); }
  handler() { return this.push.bind(this); }
  async next(what, ms) {
    await waitFor(what, () => this.items.length > 0, ms);
    return this.items.shift();
  }
}

function done() {
  console.log("PASS");
  process.exit(0);
}

module.exports = { SMQ, WebSocket, url, fail, waitFor, connect, Inbox, assert, done };

<?lsp
-- The tutorial's example 8.3, browser side. The page loads the SMQ
-- browser client from /rtl/smq.js, connects to the app's broker at
-- /smq.lsp, and publishes to the topic "hello". The server-side Lua in
-- .preload (example 8.2) answers with five messages, one second apart,
-- sent to this client's own ETID from the server's ETID 1.
?>
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>SMQ hello</title>
<script src="/rtl/smq.js"></script>
<style>
body{font-family:sans-serif;max-width:40em;margin:2em auto}
li{font-family:monospace}
#status{color:#555}
</style>
</head>
<body>
<h1>SMQ hello</h1>
<p>This page publishes to the topic <code>hello</code>. A Lua callback on the
server subscribed to <code>hello</code> answers with five messages, one second
apart, sent directly to this page's ETID.</p>
<p><input id="text" value="Hello from the browser ✓" size="30">
<button id="send" disabled>Publish to "hello"</button></p>
<ol id="messages"></ol>
<p id="status">connecting…</p>
<script>
"use strict";
const list = document.getElementById("messages");
const status = document.getElementById("status");
const send = document.getElementById("send");
const text = document.getElementById("text");

function show(line) {
  const li = document.createElement("li");
  li.textContent = line; // textContent: the text is never parsed as HTML
  list.appendChild(li);
}

// The broker is /smq.lsp on this server; wsURL builds ws:// or wss://.
const smq = SMQ.Client(SMQ.wsURL("/smq.lsp"));

// Messages sent to our own ETID: register under "self" (no packet sent).
smq.subscribe("self", {
  datatype: "text",
  onmsg: function (msg, ptid) { show(msg + "  (from ETID " + ptid + ")"); }
});

smq.onconnect = function (etid) {
  status.textContent = "connected, our ETID is " + etid;
  send.disabled = false;
  smq.publish(text.value, "hello"); // queued calls would also work before this
};
smq.onreconnect = smq.onconnect;
smq.onclose = function (message, canreconnect) {
  status.textContent = "closed: " + message;
  send.disabled = true;
  if (canreconnect) return 3000; // retry every 3 s
};
send.onclick = function () { smq.publish(text.value, "hello"); };
</script>
</body>
</html>

<?lsp
-- A chat over SMQ. Every browser subscribes to the topic "chat" and
-- publishes JSON {nick, text} to it; the broker delivers each message to
-- all subscribers, the sender included. No server code is needed for the
-- chat itself; .preload only announces joins and departures (it observes
-- the topic's subscriber count). Text is UTF-8 end to end (smq.js encodes
-- it) and is shown with textContent, so any language and any markup is
-- safe.
?>
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>SMQ chat</title>
<script src="/rtl/smq.js"></script>
<style>
body{font-family:sans-serif;max-width:44em;margin:2em auto}
#log{border:1px solid #ccc;height:20em;overflow-y:auto;padding:.5em;margin:.5em 0}
.nick{font-weight:bold}
.server{color:#777;font-style:italic}
#status{color:#555}
</style>
</head>
<body>
<h1>SMQ chat</h1>
<p>Open this page in several windows. Messages go through the topic
<code>chat</code>.</p>
<p><label>Nickname <input id="nick" size="16" maxlength="40"></label></p>
<div id="log"></div>
<form id="form">
<input id="text" size="50" maxlength="1000" autocomplete="off" placeholder="Say something… (try ÆØÅ, 日本語, emoji 🐟)">
<button id="send" disabled>Send</button>
</form>
<p id="status">connecting…</p>
<script>
"use strict";
const log = document.getElementById("log");
const nick = document.getElementById("nick");
const text = document.getElementById("text");
const send = document.getElementById("send");
const status = document.getElementById("status");
nick.value = localStorage.getItem("smq-chat-nick") || "guest" + Math.floor(Math.random() * 1000);
nick.onchange = function () { localStorage.setItem("smq-chat-nick", nick.value); };

function line(who, msg, isServer) {
  const p = document.createElement("div");
  if (isServer) p.className = "server";
  const n = document.createElement("span");
  n.className = "nick";
  n.textContent = who + ": ";
  p.appendChild(n);
  p.appendChild(document.createTextNode(msg));
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
}

const smq = SMQ.Client(SMQ.wsURL("/smq.lsp"));
let myEtid = 0;

smq.subscribe("chat", {
  datatype: "json",
  onmsg: function (m, ptid) {
    if (!m || typeof m !== "object") return;
    // Only the server-side client (ETID 1) is shown as the server, whatever
    // nickname a browser picks.
    const server = ptid === 1;
    const who = server ? "server" : String(m.nick || "?") + (ptid === myEtid ? " (you)" : "");
    line(who, String(m.text || ""), server);
  },
  onack: function (ok) { if (!ok) status.textContent = "subscribe refused"; }
});

smq.onconnect = function (etid) {
  myEtid = etid;
  status.textContent = "connected (ETID " + etid + ")";
  send.disabled = false;
};
smq.onreconnect = smq.onconnect;
smq.onclose = function (message, canreconnect) {
  status.textContent = "disconnected: " + message;
  send.disabled = true;
  if (canreconnect) return 3000;
};

document.getElementById("form").onsubmit = function (ev) {
  ev.preventDefault();
  const t = text.value.trim();
  if (!t) return;
  smq.pubjson({ nick: nick.value.trim() || "guest", text: t }, "chat");
  text.value = "";
  text.focus();
};
</script>
</body>
</html>

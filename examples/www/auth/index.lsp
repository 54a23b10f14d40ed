<?lsp
-- The protected page: only for a logged-in session, else to the login page.
local s = request:session()
local user = s and s.user
if not user then
   response:sendredirect("/auth/login.lsp")
   return
end
local function esc(v)
   return (tostring(v):gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}))
end
?><!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Members</title>
<script src="/rtl/smq.js"></script></head>
<body>
<h1>Hello, <?lsp= esc(user) ?></h1>
<p>This page and the SMQ topics below need a login. The browser's SMQ
connection to /auth/smq.lsp carries the session cookie, so the broker
knows who you are.</p>
<ul id="log"></ul>
<input id="msg" placeholder="say something"> <button id="send">Send to auth/chat</button>
<p><a href="/auth/logout.lsp">Log out</a></p>
<script>
const log = t => { const li = document.createElement("li"); li.textContent = t; document.getElementById("log").appendChild(li); };
const smq = SMQ.Client(SMQ.wsURL("/auth/smq.lsp"));
smq.subscribe("auth/chat", {datatype: "text", onmsg: m => log("chat: " + m),
   onack: (ok, t) => log((ok ? "subscribed to " : "refused: ") + t)});
smq.subscribe("auth/admin", {datatype: "text", onmsg: m => log("admin: " + m),
   onack: (ok, t) => log((ok ? "subscribed to " : "refused: ") + t)});
document.getElementById("send").onclick = () => {
   smq.publish(document.getElementById("msg").value, "auth/chat");
};
</script>
</body></html>

<?lsp
-- The tutorial's example 8.1 written the blocking way: the page itself
-- loops and sleeps. In BAS this holds an HTTP pool thread for five seconds.
-- In Tarpon the page runs as a coroutine: ba.sleep parks it, req2sock has
-- already released the HTTP worker, and nothing else is blocked.
if request:header"Sec-WebSocket-Key" then
   local s = ba.socket.req2sock(request)
   if s then
      for i = 1, 5 do
         if not s:write("Hello number " .. i .. " (blocking page)", true) then break end
         ba.sleep(1000)
      end
      s:close()
   end
   return
end
?>
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>WebSocket hello (blocking style)</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto} li{font-family:monospace}</style>
</head>
<body>
<h1>WebSocket hello, blocking style</h1>
<p>The same five messages, sent by a page that calls <code>ba.sleep(1000)</code>
between writes. It blocks nothing in Tarpon.</p>
<ol id="messages"></ol>
<p id="status">connecting…</p>
<script>
const list = document.getElementById("messages");
const status = document.getElementById("status");
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + location.pathname);
ws.onopen = () => { status.textContent = "open"; };
ws.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.data;
  list.appendChild(li);
};
ws.onclose = () => { status.textContent = "closed"; };
</script>
</body>
</html>

<?lsp
-- The tutorial's example 8.1, the non-blocking way. A browser first gets the
-- HTML below; its script then requests this same page with
-- Sec-WebSocket-Key, and the page turns the request into a WebSocket.
-- s:event hands the socket to a cosocket and returns at once: the HTTP
-- worker is released, and the connection lives in the reactor.
if request:header"Sec-WebSocket-Key" then
   local s = ba.socket.req2sock(request)
   if s then
      s:event(function(s)
         for i = 1, 5 do
            if not s:write("Hello number " .. i .. " from the server", true) then break end
            -- BAS idiom for sleeping inside a cosocket: read with a timeout
            -- on a socket that receives nothing. ba.sleep(1000) works too.
            local data, err = s:read(1000)
            if err == "socketclosed" then return end
         end
         s:close()
      end, "s")
   end
   return
end
?>
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>WebSocket hello (cosocket)</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto} li{font-family:monospace}</style>
</head>
<body>
<h1>WebSocket hello</h1>
<p>This page upgrades its own URL to a WebSocket; a Lua cosocket sends five
messages one second apart, then closes.</p>
<ol id="messages"></ol>
<p id="status">connecting…</p>
<script>
const list = document.getElementById("messages");
const status = document.getElementById("status");
const t0 = performance.now();
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + location.pathname);
ws.onopen = () => { status.textContent = "open"; };
ws.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.data;
  li.dataset.ms = Math.round(performance.now() - t0);
  list.appendChild(li);
};
ws.onclose = () => { status.textContent = "closed"; };
</script>
</body>
</html>

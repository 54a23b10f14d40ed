<?lsp
-- The examples app's front page. Every example is an ordinary file of this
-- app (examples/www in the source tree, embedded in the tarpon binary).
local examples = {
   { "ws/hello.lsp", "WebSocket hello (tutorial 8.1)",
     "One page serves the HTML and, asked with Sec-WebSocket-Key, upgrades itself with ba.socket.req2sock. A cosocket sends five messages one second apart, then closes; the HTTP worker is released at once." },
   { "ws/hello-blocking.lsp", "WebSocket hello, blocking style",
     "The same five messages from a page that calls ba.sleep(1000) between writes, the way the tutorial's blocking version does. In Tarpon the page is a coroutine: it blocks nothing." },
   { "ws/echo.lsp", "Cosocket echo",
     "A WebSocket echo in ten lines of Lua; the benchmark harness measures it (lua-echo)." },
   { "smq/hello.lsp", "SMQ hello (tutorial 8.2/8.3)",
     "The browser publishes to \"hello\"; server-side Lua answers with five messages one second apart, sent from the server's ETID 1 to the browser's ETID by a ba.timer coroutine." },
   { "smq/chat.lsp", "SMQ chat",
     "Every browser subscribes to \"chat\" and publishes to it; open two windows. Any text, in any script." },
   { "smq/devices.lsp", "SMQ devices",
     "Live readings from devices on the raw TCP transport (run go run ./examples/smqdevice), and a command sent back to one of them." },
}
?>
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Tarpon examples</title>
<style>
body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.4}
dt{font-weight:bold;margin-top:1em} code{background:#f3f3f3;padding:0 .2em}
</style>
</head>
<body>
<h1>Tarpon examples</h1>
<p>Tarpon is an event-driven cosocket runtime for Lua apps written the
Barracuda App Server / Mako Server way. Upgraded connections live in an
epoll reactor and hold no goroutine; Lua coroutines drive them.</p>
<dl>
<?lsp for _, e in ipairs(examples) do ?>
<dt><a href="<?lsp= e[1] ?>"><?lsp= e[2] ?></a></dt>
<dd><?lsp= e[3] ?></dd>
<?lsp end ?>
</dl>
<p>The SMQ broker of this app answers at <code>/smq.lsp</code> (WebSocket for
browsers, raw TCP for devices: see <code>examples/smqdevice</code>), and the
browser client is at <code><a href="/rtl/smq.js">/rtl/smq.js</a></code>.</p>
</body>
</html>

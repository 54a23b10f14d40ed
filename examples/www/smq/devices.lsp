<?lsp
-- Readings of the Go device example (examples/smqdevice). The table is
-- rendered on the server from app.devices (kept by .preload, which
-- subscribes to "device/readings"); the page then subscribes to the same
-- topic with smq.js and updates live.
local function esc(s)
   return (tostring(s):gsub("[&<>\"]", {["&"]="&amp;", ["<"]="&lt;", [">"]="&gt;", ['"']="&quot;"}))
end
?>
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>SMQ devices</title>
<script src="/rtl/smq.js"></script>
<style>
body{font-family:sans-serif;max-width:44em;margin:2em auto}
td,th{padding:.2em .8em;text-align:left}
#status{color:#555}
</style>
</head>
<body>
<h1>SMQ devices</h1>
<p>Run <code>go run ./examples/smqdevice</code> (one or more, with different
<code>--uid</code>) and watch the readings arrive. The button sends a command
to every device over the topic <code>device/cmd</code>.</p>
<table>
<thead><tr><th>Device</th><th>Seq</th><th>Temperature °C</th><th>ETID</th></tr></thead>
<tbody id="rows">
<?lsp for uid, r in pairs(app.devices or {}) do ?>
<tr data-uid="<?lsp= esc(uid) ?>"><td><?lsp= esc(uid) ?></td><td><?lsp= esc(r.seq) ?></td><td><?lsp= esc(r.temp) ?></td><td><?lsp= esc(r.etid) ?></td></tr>
<?lsp end ?>
</tbody>
</table>
<p><button id="blink" disabled>Send "blink" to all devices</button></p>
<p id="status">connecting…</p>
<script>
"use strict";
const rows = document.getElementById("rows");
const status = document.getElementById("status");
const blink = document.getElementById("blink");

function row(uid) {
  for (const tr of rows.rows) if (tr.dataset.uid === uid) return tr;
  const tr = rows.insertRow();
  tr.dataset.uid = uid;
  for (let i = 0; i < 4; i++) tr.insertCell();
  return tr;
}

const smq = SMQ.Client(SMQ.wsURL("/smq.lsp"));
smq.subscribe("device/readings", {
  datatype: "json",
  onmsg: function (r, ptid) {
    if (!r || typeof r !== "object") return;
    const tr = row(String(r.uid));
    [String(r.uid), r.seq, r.temp, ptid].forEach(function (v, i) { tr.cells[i].textContent = String(v); });
  }
});
smq.onconnect = function (etid) { status.textContent = "connected (ETID " + etid + ")"; blink.disabled = false; };
smq.onreconnect = smq.onconnect;
smq.onclose = function (message, canreconnect) {
  status.textContent = "disconnected: " + message;
  blink.disabled = true;
  if (canreconnect) return 3000;
};
blink.onclick = function () { smq.pubjson({ cmd: "blink" }, "device/cmd"); };
</script>
</body>
</html>

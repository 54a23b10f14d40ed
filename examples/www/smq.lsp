<?lsp
-- The SMQ broker endpoint of this app (created in .preload). WebSocket
-- clients (smq.js) and raw clients (SimpleMQ header: the Go, C, Python
-- clients) both start here; connect takes the connection over.
-- A request without SMQ headers gets 404, as in BAS.
app.smq:connect(request)
?>

<?lsp
-- The login example's SMQ endpoint (broker in .lua/authsmq.lua). The
-- broker's authenticate sees this request's session: without a logged-in
-- session the client gets Connack 6 ("login required").
app.authsmq:connect(request)
?>

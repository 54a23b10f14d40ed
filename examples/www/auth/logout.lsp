<?lsp
-- Logging out clears the user first: an SMQ connection opened with this
-- session is refused any further topic (permittop checks the session).
local s = request:session()
if s then
   s.user = nil
   s:terminate()
end
response:sendredirect("/auth/login.lsp")
?>

<?lsp
-- The login page of the example (/auth/). POST checks the user and
-- password (.lua/authusers.lua) and stores the user in a fresh session:
-- the pages of /auth/ and the broker at /auth/smq.lsp both trust it.
local users = require"authusers"
local failed = false
if request:method() == "POST" then
   local d = request:data()
   if users.check(d.user, d.password) then
      -- A new session on login, so a session id planted before the login
      -- (session fixation) is worth nothing afterwards.
      local old = request:session()
      if old then
         old.user = nil
         old:terminate()
      end
      local s = request:session(true)
      s.user = d.user
      response:sendredirect("/auth/index.lsp")
      return
   end
   failed = true
   response:setstatus(403)
end
?><!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Log in</title></head>
<body>
<h1>Log in</h1>
<?lsp if failed then ?><p><b>Wrong user name or password.</b></p><?lsp end ?>
<form method="post" action="/auth/login.lsp">
 <label>User <input name="user" autocomplete="username"></label>
 <label>Password <input name="password" type="password" autocomplete="current-password"></label>
 <button>Log in</button>
</form>
<p>Demo accounts: alice / wonderland (admin), bob / builder.</p>
</body></html>

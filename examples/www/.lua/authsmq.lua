-- The login example's SMQ broker (pages in /auth/). Loaded once by the
-- app's .preload (require caches it); /auth/smq.lsp is its endpoint.
--
-- Secure by default: a client is admitted only when the HTTP request that
-- opened the connection belongs to a logged-in session (browsers send the
-- session cookie with the WebSocket upgrade, so they inherit the web
-- login), and every topic is refused unless the rule below allows it.

local users = require"authusers"

-- Which topics a user may subscribe to or publish on (create).
-- "auth/chat" is for every logged-in user, "auth/admin" for admins only,
-- and "auth/user/<name>" for that user alone. Everything else is refused.
local function allowed(user, topic)
   if topic == "auth/chat" then return true end
   if topic == "auth/admin" then return users.isadmin(user) end
   return topic == "auth/user/" .. user
end

-- The session's user, if the session is still logged in (logout clears it).
local function userof(session)
   return type(session) == "table" and session.user or nil
end

local broker = require"smq.hub".create{
   -- info.session is the request's session table (nil without a session
   -- cookie); the login page stored the user name in it.
   authenticate = function(credentials, info)
      if not userof(info.session) then
         return 6, "login required" -- access denied
      end
      return 0
   end,
   onconnect = function(etid, info, peer)
      peer.session = info.session -- permittop checks it on every request
      trace("auth SMQ: connected", etid, userof(info.session))
   end,
   permittop = function(topic, subscribe, peer)
      local user = userof(peer.session)
      return user ~= nil and allowed(user, topic)
   end,
   -- No client may create sub-topics here.
   permitsubtop = function() return false end,
}

return broker

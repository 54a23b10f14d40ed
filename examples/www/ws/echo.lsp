<?lsp
-- A WebSocket echo in a Lua cosocket: text stays text, binary stays binary.
-- The benchmark harness's lua-echo scenario targets this page.
if request:header"Sec-WebSocket-Key" then
   local s = ba.socket.req2sock(request)
   if s then
      s:event(function(s)
         while true do
            local data, isText = s:read()
            if not data then break end
            s:write(data, isText)
         end
      end, "s")
   end
   return
end
response:senderror(404)
?>

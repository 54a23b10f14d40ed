-- The login example's user table. A demo: real apps keep salted password
-- hashes in a database, not plain text in a module.
local M = {}

local accounts = {
   alice = {password = "wonderland", admin = true},
   bob = {password = "builder"},
}

-- check returns true when name and password match an account. It looks at
-- every character of the password whatever the outcome, so the answer's
-- timing says little about how much of a guess was right.
function M.check(name, password)
   local a = type(name) == "string" and accounts[name] or nil
   if type(password) ~= "string" then return false end
   local want = a and a.password or "\0"
   local same = #want == #password
   for i = 1, math.max(#want, #password) do
      if want:byte(i) ~= password:byte(i) then same = false end
   end
   return a ~= nil and same
end

function M.isadmin(name)
   local a = accounts[name]
   return a ~= nil and a.admin == true
end

return M

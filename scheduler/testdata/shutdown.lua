-- Stop resumes parked tasks with nil, "sysshutdown".

function TestShutdownResumesParked()
  local a, b = ba.sleep(1e9)
  eq(a, nil)
  eq(b, "sysshutdown")
end

function TestShutdownInsidePcall()
  local ok, a, b = pcall(function() return ba.sleep(1e9) end)
  eq(ok, true)
  eq(a, nil)
  eq(b, "sysshutdown")
end

-- wrk script: ../shared/floor/call.lua plus `Authorization: Bearer $TOKEN` (loadtest/floor-auth.sh).
local n = 0
local sid = os.getenv("SESSION")
local token = os.getenv("TOKEN")
request = function()
  n = n + 1
  local body = '{"jsonrpc":"2.0","id":' .. n .. ',"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
  local h = {["Content-Type"]="application/json", ["Accept"]="application/json, text/event-stream", ["MCP-Protocol-Version"]="2025-11-25"}
  if sid and sid ~= "" then h["Mcp-Session-Id"] = sid end
  if token and token ~= "" then h["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/mcp", h, body)
end

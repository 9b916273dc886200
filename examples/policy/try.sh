#!/usr/bin/env bash
# Starts the gateway with examples/policy/switchboard.yaml on 127.0.0.1:8081 and shows the
# pipeline deciding: the filtered tools/list, a refused tool, then the call budget running out.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
target/release/switchboard serve --config examples/policy/switchboard.yaml >/tmp/switchboard-policy.log 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null' EXIT
url=http://127.0.0.1:8081/mcp
for _ in $(seq 50); do curl -sf http://127.0.0.1:8081/readyz >/dev/null && break; sleep 0.1; done
echo "gateway: $url (log: /tmp/switchboard-policy.log)"
H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
sid=$(curl -s -D - -o /dev/null "${H[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"try","version":"1"}}}' $url \
  | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r')
H+=(-H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25')
rpc() { curl -s "${H[@]}" -d "$1" $url; echo; }
rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
echo "== tools/list (delete_note and close_ticket are not listed)"
rpc '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' | grep -o '"name":"[a-z_]*"' | tr '\n' ' '; echo
echo "== calling a refused tool"
rpc '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"close_ticket","arguments":{"id":1}}}'
echo "== six calls against a budget of five"
for i in 3 4 5 6 7 8; do rpc "{\"jsonrpc\":\"2.0\",\"id\":$i,\"method\":\"tools/call\",\"params\":{\"name\":\"list_notes\",\"arguments\":{}}}" | cut -c1-160; done

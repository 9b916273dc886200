#!/usr/bin/env bash
# The credential vault on 127.0.0.1: two demo backends over Streamable HTTP, a toy OAuth token
# endpoint, and the gateway in front (examples/vault/switchboard.yaml). `notes` gets a static
# API key read from a file; `tickets` gets a client-credentials token the gateway fetched itself.
# The client never holds either, and neither appears in the gateway's debug log.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${SWITCHBOARD_BIN:-target/release/switchboard}   # SWITCHBOARD_BIN: use another build
[ -n "${SWITCHBOARD_BIN:-}" ] || cargo build --release --quiet
logs=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
$bin demo-backend notes --http 127.0.0.1:8091 >"$logs/notes.log" 2>&1 & pids+=($!)
$bin demo-backend tickets --http 127.0.0.1:8092 >"$logs/tickets.log" 2>&1 & pids+=($!)
CLIENT_SECRET_FILE=examples/vault/secrets/tickets-client-secret PORT=8093 \
  python3 examples/vault/token_endpoint.py 2>"$logs/idp.log" & pids+=($!)
for port in 8091 8092 8093; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
$bin check-config examples/vault/switchboard.yaml
RUST_LOG=debug $bin serve --config examples/vault/switchboard.yaml >"$logs/gateway.log" 2>&1 & pids+=($!)
url=http://127.0.0.1:8082/mcp
for _ in $(seq 100); do curl -sf http://127.0.0.1:8082/readyz >/dev/null && break; sleep 0.1; done
echo "gateway: $url (logs in $logs)"

H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
   -H 'Authorization: Bearer the-clients-own-token')   # sent by the client, never forwarded
sid=$(curl -s -D - -o /dev/null "${H[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"try","version":"1"}}}' $url \
  | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r')
H+=(-H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25')
rpc() { curl -s "${H[@]}" -d "$1" $url; echo; }
rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
echo "== tools (both backends, prefixed)"
rpc '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' | grep -o '"name":"[a-z_]*"' | tr '\n' ' '; echo
echo "== a call to each backend"
rpc '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes__list_notes","arguments":{}}}' | cut -c1-160
rpc '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"tickets__list_tickets","arguments":{}}}' | cut -c1-160
echo "== the token endpoint (one token, shared by discovery and the session)"
cat "$logs/idp.log"
echo "== backend credentials in the gateway's debug log: $(grep -c -F -e "$(cat examples/vault/secrets/notes-api-key)" -e "$(cat examples/vault/secrets/tickets-client-secret)" "$logs/gateway.log" || true) lines"
echo "Connect an MCP client to $url; Ctrl-C to stop."
wait "${pids[-1]}"

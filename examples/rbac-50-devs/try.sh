#!/usr/bin/env bash
# Starts a real identity provider (oauth2-mock-server, as the tests use it) and the gateway with
# examples/rbac-50-devs.yaml on 127.0.0.1:8083, then shows a few of the 50 developers' views:
# the tools each one is listed, a read-only role refused a write, a granted write, and the Rego
# rule letting alice open pull requests in acme only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/idp.sh

target/release/switchboard serve --config examples/rbac-50-devs.yaml >/tmp/switchboard-rbac.log 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null; exec 3>&-' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:8083/readyz >/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:8083/mcp
echo "gateway: $url (log: /tmp/switchboard-rbac.log)"

token() { # token SUBJECT
  curl -s "$TOKEN_URL" -d grant_type=client_credentials -d client_id=try -d "sub=$1" \
    -d "aud=$url" -d scope=mcp | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
session() { # session SUBJECT → sets S (the curl arguments of a session opened as SUBJECT)
  local auth=(-H "Authorization: Bearer $(token "$1")")
  local sid
  sid=$(curl -s -D - -o /dev/null "${H[@]}" "${auth[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"try","version":"1"}}}' $url \
    | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r')
  S=("${H[@]}" "${auth[@]}" -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25')
  curl -s "${S[@]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' $url >/dev/null
}
rpc() { curl -s "${S[@]}" -d "$1" $url | sed -n 's/^data: //p;/^{/p'; echo; }
tools() { rpc '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' | { grep -o '"name":"[a-z_]*"' || echo '"name":"(none)"'; } | cut -d'"' -f4 | tr '\n' ' '; echo; }
call() { rpc "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}" | cut -c1-320; }

for who in dev05:dev dev30:reader dev44:dba dev46:lead nobody:'no role'; do
  session "${who%%:*}"; echo; echo "== ${who%%:*} (${who#*:}) is listed:"; tools
done
echo; echo "== dev30 (reader) tries a write: refused by rbac"
session dev30; call slack__post_message '{"channel":"dev","text":"hi"}'
echo; echo "== dev05 (dev) writes a note: allowed"
session dev05; call notes__add_note '{"title":"standup","body":"ship it"}'
echo; echo "== alice opens a pull request in acme, then in another org (the Rego rule)"
session alice
call github__open_pr '{"repo":"acme/switchboard","title":"Add RBAC example"}'
call github__open_pr '{"repo":"other/tools","title":"Sneaky"}'

#!/usr/bin/env bash
# Starts a real identity provider (oauth2-mock-server, as the tests use it) and the gateway with
# examples/auth/switchboard.yaml on 127.0.0.1:8082, then shows what a client sees: the 401
# challenge, the protected resource metadata, a token from the IdP opening a session, a
# missing scope (403), an API key, and the admin listener's view of the sessions.
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/idp.sh

target/release/switchboard serve --config examples/auth/switchboard.yaml >/tmp/switchboard-auth.log 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null; exec 3>&-' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:8082/readyz >/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:8082/mcp
echo "gateway: $url (log: /tmp/switchboard-auth.log)"

H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"try","version":"1"}}}'
token() { # token SUBJECT SCOPE
  curl -s "$TOKEN_URL" -d grant_type=client_credentials -d client_id=try -d "sub=$1" \
    -d "aud=$url" -d "scope=$2" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

echo; echo "== no token: 401 and where to find out how to get one"
curl -s -o /dev/null -D - "${H[@]}" -d "$INIT" $url | grep -i -E '^HTTP|^www-authenticate'
echo; echo "== the protected resource metadata (RFC 9728)"
curl -s http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp; echo
echo; echo "== alice's token from the IdP: a session"
alice=$(token alice mcp)
curl -s -D - -o /dev/null "${H[@]}" -H "Authorization: Bearer $alice" -d "$INIT" $url | grep -i -E '^HTTP|^mcp-session-id'
echo; echo "== a token without the mcp scope: 403 insufficient_scope"
curl -s -o /dev/null -D - "${H[@]}" -H "Authorization: Bearer $(token alice profile)" -d "$INIT" $url | grep -i -E '^HTTP|^www-authenticate'
echo; echo "== the ci-bot API key"
curl -s -D - -o /dev/null "${H[@]}" -H "Authorization: Bearer sbk_example-key-for-the-try-script-only-0000" -d "$INIT" $url | grep -i -E '^HTTP'
echo; echo "== the admin listener: sessions (needs the admin role)"
curl -s -H "Authorization: Bearer sbk_example-admin-key-for-the-try-script-000" http://127.0.0.1:9092/admin/sessions; echo

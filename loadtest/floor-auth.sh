#!/usr/bin/env bash
# What authentication and authorization cost per call, in one run: the floor's echo backend
# (../shared/floor) behind two gateways side by side — loadtest/floor-gateway.yaml (auth off,
# the pipeline's access-list + call-budget) on :9104 and loadtest/floor-gateway-auth.yaml (the
# same plus a JWT on every request, RBAC and one Rego rule) on :9105 — each driven by wrk with
# one session, alternating cells so both see the same machine. Prints the gateway CPU µs per
# call of each and the difference (the issue's target: auth + RBAC + Rego ≤ +5 µs).
#
#   loadtest/floor-auth.sh          # from the project root; env: DUR=8, CONNS="1 64", ROUNDS=2
# Other pairs: ON_CONFIG / OFF_CONFIG (configs; the "on" one listens on :9105 with a token),
# ON_BIN / OFF_BIN (binaries, e.g. an older build for an A/B of the same config).
# Needs wrk and openssl; builds the release gateway and the floor into their target dirs.
set -eu
cd "$(dirname "$0")/.."
floor=$(cd ../shared/floor && pwd)
T=${FLOOR_TARGET_DIR:-$HOME/.cache/floor-target}
command -v wrk >/dev/null || { echo "floor-auth.sh: wrk not found (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet
(cd "$floor" && CARGO_TARGET_DIR=$T cargo build --release --locked --quiet)
D=${DUR:-8}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
"$T/release/echo" 127.0.0.1:9101 & pids+=($!)
"${OFF_BIN:-target/release/switchboard}" serve --config "${OFF_CONFIG:-loadtest/floor-gateway.yaml}" >/tmp/floor-gw-off.log 2>&1 & A=$!; pids+=($A)
FLOOR_JWT_SECRET=floor-measurement-secret-not-for-production-use \
  "${ON_BIN:-target/release/switchboard}" serve --config "${ON_CONFIG:-loadtest/floor-gateway-auth.yaml}" >/tmp/floor-gw-on.log 2>&1 & B=$!; pids+=($B)
for port in 9104 9105; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done

# A development HS256 token (the issuer in floor-gateway-auth.yaml): verified once, then served
# from the token cache like any token a session presents again.
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
body=$(printf '{"iss":"https://floor.test","aud":"http://127.0.0.1:9105/mcp","sub":"alice","exp":%d,"scope":"mcp","roles":["dev"]}' $((now + 3600)) | b64)
sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -hmac floor-measurement-secret-not-for-production-use -binary | b64)
TOKEN="$head.$body.$sig"

H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
session() { # port [token]
  local auth=() init sid
  [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
  init='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
  sid=$(curl -s -D - -o /dev/null "${H[@]}" "${auth[@]}" -d "$init" "http://127.0.0.1:$1/mcp" | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r')
  [ -n "$sid" ] || { echo "floor-auth.sh: no session on :$1 (logs /tmp/floor-gw-*.log)" >&2; exit 1; }
  curl -s -o /dev/null "${H[@]}" "${auth[@]}" -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "http://127.0.0.1:$1/mcp"
  echo "$sid"
}
SA=$(session 9104)
SB=$(session 9105 "$TOKEN")
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
tick=$(getconf CLK_TCK)
run() { # name port conns pid session token
  local c0 c1 out req non2xx p99 rps
  c0=$(cpu "$4")
  out=$(SESSION=$5 TOKEN=$6 wrk -t1 -c"$3" -d"${D}s" --latency -s loadtest/floor-auth.lua "http://127.0.0.1:$2/mcp")
  c1=$(cpu "$4")
  req=$(echo "$out" | awk '/requests in/{print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  p99=$(echo "$out" | awk '/ 99%/{print $2}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  us=$(awk -v a="$c0" -v b="$c1" -v t="$tick" -v r="$req" 'BEGIN{printf "%.1f", (b-a)/t*1e6/r}')
  printf "| %-9s | %5s | %9s | %10s | %7s | %s |\n" "$1" "$3" "$p99" "$rps" "$us" "${non2xx:-0}"
  [ -z "$non2xx" ] || { echo "floor-auth.sh: $1 answered $non2xx non-2xx (logs /tmp/floor-gw-*.log)" >&2; exit 1; }
}
echo "| gateway | conns | p99 | req/s | CPU µs/call | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
declare -A sum_off sum_on
for c in ${CONNS:-1 64}; do
  sum_off[$c]=0; sum_on[$c]=0
  for _ in $(seq "${ROUNDS:-2}"); do
    run auth-off 9104 "$c" "$A" "$SA" ""; sum_off[$c]=$(awk -v s="${sum_off[$c]}" -v u="$us" 'BEGIN{print s+u}')
    run auth-on 9105 "$c" "$B" "$SB" "$TOKEN"; sum_on[$c]=$(awk -v s="${sum_on[$c]}" -v u="$us" 'BEGIN{print s+u}')
  done
done
for c in ${CONNS:-1 64}; do
  awk -v a="${sum_off[$c]}" -v b="${sum_on[$c]}" -v n="${ROUNDS:-2}" -v c="$c" \
    'BEGIN{printf "conns %s: auth off %.1f µs/call, auth+RBAC+Rego on %.1f µs/call, difference %+.1f µs\n", c, a/n, b/n, (b-a)/n}'
done

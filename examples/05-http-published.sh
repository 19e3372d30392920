#!/usr/bin/env bash
# 05 — publishing a port. An HTTP server listens on port 80 inside a private namespace;
# `--publish 8080:80` makes it reachable on the host's port 8080: from the host itself
# (127.0.0.1 and its own addresses) and from another machine, while port 80 stays at the
# namespace's own address.
set -euo pipefail
source "$(dirname "$0")/common.sh"

cleanup() {
  set +e
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null
  "$NETCELL" destroy web 2>/dev/null
  ip netns del client 2>/dev/null
}
trap cleanup EXIT
# get HOST PORT [NETNS]: one HTTP request; prints the response.
get() {
  local cmd=(nc -w 2 "$1" "$2")
  [ -n "${3:-}" ] && cmd=(ip netns exec "$3" "${cmd[@]}")
  printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" | "${cmd[@]}"
}

say "Another machine: namespace client (198.51.100.2) on a link to the world (198.51.100.1)."
machine client lan0 198.51.100.1/24 198.51.100.2/24

say "A private namespace web with port 8080 of the host published to its port 80."
run "$NETCELL" create web --mode private --publish 8080:80
web=$("$NETCELL" info web --json | jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]' | cut -d/ -f1)
echo "web's address: $web"
run nft list map ip netcell pf_tcp

say "The server: netcell-responder answers every connection with a small HTTP response."
"$NETCELL" exec web -- "$NETCELL_RESPONDER" 0.0.0.0 80 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from web\n' &
server=$!
wait_listening web 80

for target in "$web 80" "127.0.0.1 8080" "198.51.100.1 8080"; do
  read -r host port <<<"$target"
  say "From the host to $host:$port"
  reply=$(get "$host" "$port")
  printf '%s\n' "$reply"
  check 'grep -q "hello from web" <<<"$reply"' "$host:$port serves web's page"
done
say "From the other machine to the host's 198.51.100.1:8080"
reply=$(get 198.51.100.1 8080 client)
printf '%s\n' "$reply"
check 'grep -q "hello from web" <<<"$reply"' "client reaches web through the published port"
say "The other machine has no route to web's private address, only to the published port:"
if get "$web" 80 client >/dev/null 2>&1; then fail "client reached $web:80 directly"; fi
echo "ok: client cannot reach $web:80"
echo "Example 05 done."

# netcell examples: shared helpers, sourced by examples/NN-*.sh (not an example itself).
# Sets NETCELL and NETCELL_RESPONDER, refuses to run outside a throwaway world, and gives the
# tutorial-style helpers say / run / check / fail / machine / wait_listening; examples_dir is this directory.
# shellcheck shell=bash

NETCELL=${NETCELL:-netcell}
# The test TCP server (tests/support/responder_main.cc): from PATH, else next to a build's netcell.
if [ -z "${NETCELL_RESPONDER:-}" ]; then
  NETCELL_RESPONDER=netcell-responder
  netcell_path=$(command -v "$NETCELL" || true)
  if ! command -v netcell-responder >/dev/null && [ -n "$netcell_path" ] &&
     [ -x "$(dirname "$netcell_path")/tests/netcell-responder" ]; then
    NETCELL_RESPONDER=$(dirname "$netcell_path")/tests/netcell-responder
  fi
fi
examples_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# These scripts change the network of the namespace they run in: only ever inside a world (a
# fresh network + mount namespace made by tests/support/world.sh), never on the real host.
# Either world.sh said so, or this is provably not PID 1's (the machine's) network namespace.
init_net=$(readlink /proc/1/ns/net 2>/dev/null || true)
if [ "${NETCELL_TEST_WORLD:-}" != 1 ] &&
   { [ -z "$init_net" ] || [ "$(readlink /proc/self/ns/net)" = "$init_net" ]; }; then
  echo "$(basename "$0"): refusing to run in the machine's own network namespace." >&2
  echo "Run it inside a throwaway world, from the repository's root:" >&2
  echo "  tests/support/world.sh env NETCELL=build/netcell bash examples/$(basename "$0")" >&2
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "$(basename "$0"): needs root (inside its world)" >&2
  exit 77
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }  # the command line goes to stderr, so output can be piped
fail() { echo "$(basename "$0"): FAILED: $*" >&2; exit 1; }
# check 'SHELL CONDITION' 'what it means': fails the example when the condition is false.
check() { if eval "$1"; then echo "ok: $2"; else fail "$2"; fi; }
# machine NS WORLD_LINK WORLD_CIDR NS_CIDR: "another machine", namespace NS, on a veth link to
# the world (WORLD_LINK with WORLD_CIDR on the world's side, eth0 with NS_CIDR on its side), every
# command shown as it runs. The caller removes it (ip netns del NS; the link goes with it).
machine() {
  local ns=$1 link=$2 here=$3 there=$4
  run ip netns add "$ns"
  run ip link add "$link" type veth peer name eth0 netns "$ns"
  run ip addr add "$here" dev "$link"
  run ip link set "$link" up
  run ip -n "$ns" addr add "$there" dev eth0
  run ip -n "$ns" link set eth0 up
  run ip -n "$ns" link set lo up
}
# Waits (at most ~5 s) until something listens on TCP PORT in network namespace NS ("" = here).
wait_listening() {
  local ns=$1 port=$2 i
  for i in $(seq 50); do
    if [ -z "$ns" ]; then ss -Hltn "sport = :$port" | grep -q . && return 0
    else ip netns exec "$ns" ss -Hltn "sport = :$port" | grep -q . && return 0; fi
    sleep 0.1
  done
  fail "nothing listens on port $port${ns:+ in $ns}"
}

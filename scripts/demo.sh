#!/usr/bin/env bash
# netcell demo: creates a namespace of each available mode inside a throwaway world (a fresh
# network + mount namespace, so the real host is never touched), runs a command in each, shows
# info and stats, and destroys them, saying what it does. Exits non-zero if anything is off.
#   scripts/demo.sh [--bin PATH/TO/netcell]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/build/netcell"
if [ "${1:-}" = "--bin" ]; then bin=$(realpath "$2"); fi
if [ -z "${NETCELL_TEST_WORLD:-}" ]; then
  exec "$here/tests/support/world.sh" bash "$0" --bin "$bin"
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
check() { if ! eval "$1"; then echo "demo: FAILED: $2" >&2; exit 1; fi; }
netcell() { "$bin" "$@"; }

say "We are inside a throwaway world: its own network namespace with only lo, and a tmpfs /run."
run ip -br addr
say "The world gets an address 192.0.2.1 and a TCP server on port 8000 (stands in for 'the host')."
ip addr add 192.0.2.1/32 dev lo
timeout 60 nc -lk 0.0.0.0 8000 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 0.2
run nc -z -w 1 192.0.2.1 8000 && echo "reachable from the world itself"

say "What can this machine do?"
run netcell doctor

say "full isolation: a new network namespace with only loopback."
run netcell create sandbox --owner $$
run netcell info sandbox
say "iproute2 sees it, because netcell bind-mounts it in /run/netns:"
run ip netns list
run ip -n sandbox -br link
say "A command inside sees only lo, and cannot reach the world's 127.0.0.1 or 192.0.2.1:"
run netcell exec sandbox -- ip -br addr
for target in 127.0.0.1 192.0.2.1; do
  if netcell exec sandbox -- nc -z -w 1 "$target" 8000; then
    echo "demo: FAILED: $target:8000 reachable from full isolation" >&2; exit 1
  fi
  echo "connect to $target:8000 from sandbox: refused/unreachable, as it must be"
done
run netcell exec sandbox -- ping -c 2 -i 0.2 -q 127.0.0.1
say "Its interface counters (read from the kernel over netlink):"
run netcell stats sandbox
say "find-pid: which namespace does this process own?"
run netcell find-pid $$

say "shared mode: the host's own network, recorded and tracked like the others."
run netcell create hostnet --mode shared
run netcell exec hostnet -- nc -z -w 1 192.0.2.1 8000 && echo "shared mode reaches the world, as it should"
run netcell stats hostnet
run netcell list

say "run: an ephemeral namespace for one command, with a PID namespace; the command is PID 1."
run netcell run --pid-ns -- sh -c 'echo "my pid is $$"; ip -br link'
set +e
netcell run -- sh -c 'exit 7'
code=$?
set -e
echo "exit code of 'run -- sh -c \"exit 7\"': $code"
check '[ "$code" = 7 ]' "exit code did not pass through"

say "private and bridged modes come with the networking release; netcell says so plainly:"
netcell create web --mode private --publish 8080:80 || true

say "The simulation backend: same API, no OS changes, and it never claims to isolate."
run netcell --backend simulation --run-dir /run/netcell-sim create model
run netcell --backend simulation --run-dir /run/netcell-sim info model
netcell --backend simulation --run-dir /run/netcell-sim destroy model

say "Bad input gets one line and exit code 2, and changes nothing:"
set +e
netcell create "bad/name"; echo "exit code $?"
netcell create x --mode isolated; echo "exit code $?"
netcell info nosuch; echo "exit code $?"
set -e

say "Destroy everything and check that nothing is left."
run netcell destroy sandbox hostnet
run netcell list
check '[ -z "$(ip netns list)" ]' "a namespace is still mounted"
check '[ -z "$(ls /run/netns)" ]' "a file is left in /run/netns"
check '! grep -q " /run/netns/" /proc/self/mountinfo' "a mount is left"
check '[ -z "$(ls /run/netcell/namespaces)" ]' "a state record is left"
echo "nothing left behind. Demo done."

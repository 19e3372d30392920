#!/usr/bin/env bash
# netcell demo: creates a namespace of each available mode inside a throwaway world (a fresh
# network + mount namespace, so the real host is never touched), runs a command in each, shows
# info and stats, and destroys them, saying what it does. Exits non-zero if anything is off.
#   scripts/demo.sh [--bin PATH/TO/netcell]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/build/netcell"
responder="$here/build/tests/netcell-responder"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$(realpath "$2"); shift 2 ;;
    --responder) responder=$(realpath "$2"); shift 2 ;;
    *) echo "usage: scripts/demo.sh [--bin NETCELL] [--responder NETCELL-RESPONDER]" >&2; exit 2 ;;
  esac
done
if [ -z "${NETCELL_TEST_WORLD:-}" ]; then
  exec "$here/tests/support/world.sh" bash "$0" --bin "$bin" --responder "$responder"
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
check() { if ! eval "$1"; then echo "demo: FAILED: $2" >&2; exit 1; fi; }
netcell() { "$bin" "$@"; }

say "We are inside a throwaway world: its own network namespace with only lo, and a tmpfs /run."
run ip -br addr
say "The world gets an address 192.0.2.1 and a TCP server on port 8000 (stands in for 'the host')."
ip addr add 192.0.2.1/32 dev lo
"$responder" 0.0.0.0 8000 'world\n' &
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

say "'The internet': a namespace wan on TEST-NET-3 (203.0.113.2) with a web server on port 80."
ip netns add wan
ip link add wan0 type veth peer name eth0 netns wan
ip addr add 203.0.113.1/24 dev wan0 && ip link set wan0 up
ip -n wan addr add 203.0.113.2/24 dev eth0 && ip -n wan link set eth0 up && ip -n wan link set lo up
ip route add default via 203.0.113.2
ip netns exec wan "$responder" 203.0.113.2 80 'HTTP/1.0 200 OK\r\n\r\nhello from the internet\n' /run/wan.log &
wanserver=$!
trap 'kill $server $wanserver 2>/dev/null || true' EXIT

say "private mode: a veth to the host, an address from the pool, NAT, and a published port."
run netcell create web --mode private --publish 8080:80 --dns 203.0.113.2
run netcell info web
run ip -n web -br addr
say "From inside, the internet is reachable through NAT (the server sees the host's address):"
run netcell exec web -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 203.0.113.2 80'
grep -q "203.0.113.1" /run/wan.log && echo "wan saw the connection from 203.0.113.1 (masqueraded)"
check 'grep -q "203.0.113.1" /run/wan.log' "the internet did not see the masqueraded address"
say "Dual stack: web also has an IPv6 address, a /64 of the host's ULA pool, and NAT66."
say "The internet gets 2001:db8:1::2 (TEST-NET IPv6), the world 2001:db8:1::1."
ip addr add 2001:db8:1::1/64 dev wan0 nodad && ip -n wan addr add 2001:db8:1::2/64 dev eth0 nodad
ip -6 route add default via 2001:db8:1::2
for _ in $(seq 50); do  # both link-local addresses past DAD (at most 5 s)
  [ -z "$(ip -6 addr show dev wan0 tentative)$(ip -n wan -6 addr show dev eth0 tentative)" ] && break
  sleep 0.1
done
ip netns exec wan "$responder" 2001:db8:1::2 80 'HTTP/1.0 200 OK\r\n\r\nhello over IPv6\n' /run/wan6.log &
wan6server=$!
trap 'kill $server $wanserver $wan6server 2>/dev/null || true' EXIT
run ip -n web -6 -br addr show dev eth0
sleep 0.3
run netcell exec web -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -6 -w 2 2001:db8:1::2 80'
check 'grep -qx "2001:db8:1::1" /run/wan6.log' "the internet did not see the host's IPv6 address"
echo "wan saw the IPv6 connection from $(head -1 /run/wan6.log) (NAT66: the host's address)"
say "An IPv4-only namespace beside it (--no-ipv6) has no IPv6 at all:"
run netcell create v4only --mode private --no-ipv6
run netcell info v4only
check '! netcell exec v4only -- nc -6 -z -w 1 2001:db8:1::2 80' "an IPv4-only namespace reached IPv6"
echo "IPv6 connect from v4only: fails (no IPv6 address, no route)"
run netcell destroy v4only

say "A server inside web on port 80 is published on the host's port 8080:"
ip netns exec web "$responder" 0.0.0.0 80 'HTTP/1.0 200 OK\r\n\r\nhello from web\n' &
webserver=$!
trap 'kill $server $wanserver $wan6server $webserver 2>/dev/null || true' EXIT
sleep 0.3
run sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 8080'
check 'printf "x" | nc -w 2 127.0.0.1 8080 | grep -q "hello from web"' "127.0.0.1:8080 did not reach web"
say "But web cannot reach the host's own services, nor another private namespace:"
run netcell create other --mode private
other_ip=$(netcell info other --json | jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]')
other_ip=${other_ip%/*}
ip netns exec other "$responder" 0.0.0.0 8000 'other\n' &
otherns_server=$!
sleep 0.2
web_gw=$(netcell info web --json | jq -r .gateway)
for target in "$web_gw" 192.0.2.1 203.0.113.1 "$other_ip"; do
  # Each target answers the world (the positive control), never web.
  check "nc -z -w 1 $target 8000" "$target:8000 does not answer even the world: this check proves nothing"
  if netcell exec web -- nc -z -w 1 "$target" 8000; then
    echo "demo: FAILED: $target:8000 reachable from a private namespace" >&2; exit 1
  fi
  echo "connect to $target:8000: from the world ok, from web blocked"
done
kill $otherns_server 2>/dev/null || true
say "The firewall is one nftables table; namespaces are set and map elements, not rules:"
run nft list set ip netcell ns_ifs
run nft list map ip netcell pf_tcp

say "Egress policy: a private namespace that may reach the internet's web server and nothing else."
ip -n wan addr add 203.0.113.3/24 dev eth0
ip netns exec wan "$responder" 203.0.113.3 80 'HTTP/1.0 200 OK\r\n\r\nanother server\n' &
otherserver=$!
trap 'kill $server $wanserver $wan6server $webserver $otherserver 2>/dev/null || true' EXIT
run netcell create job --mode private --allow 203.0.113.2:80/tcp
run netcell policy show job
sleep 0.2
run netcell exec job -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 203.0.113.2 80'
check 'netcell exec job -- nc -z -w 2 203.0.113.2 80' "the allowed server was not reachable"
for target in 203.0.113.3:80 203.0.113.2:443; do
  # nc waits up to 5 s for an answer; the policy's reset must end it well within 1 s.
  code=0
  netcell exec job -- timeout 1 nc -z -w 5 "${target%:*}" "${target#*:}" 2>/dev/null || code=$?
  check '[ "$code" = 1 ]' "$target was not refused at once (exit $code; 0 = reached, 124 = timed out)"
  echo "connect to $target from job: refused at once (TCP reset), not timed out"
done
say "The policy changes live, as one transaction; new connections follow it at once:"
run netcell policy set job --allow 203.0.113.3:80/tcp
check 'netcell exec job -- nc -z -w 2 203.0.113.3 80' "the newly allowed server was not reachable"
check '! netcell exec job -- nc -z -w 2 203.0.113.2 80' "the no longer allowed server was reachable"
echo "job now reaches 203.0.113.3:80 and no longer 203.0.113.2:80"
# The rule sets are sharded by the namespace's address (bits 2-7 of it pick one of 64 sets).
job_ip=$(netcell info job --json | jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]')
job_ip=${job_ip%/*}
run nft list set ip netcell "pol_allow_tp_$(((${job_ip##*.} >> 2) & 63))"

say "Domain allow-lists: names resolve only through netcell's own resolver, and only allowed ones."
echo "The internet gets a DNS server, 198.51.100.53: web.test is 203.0.113.2, other.test 203.0.113.3."
ip -n wan addr add 198.51.100.53/32 dev lo
ip netns exec wan dnsmasq --no-resolv --no-hosts --bind-interfaces --listen-address=198.51.100.53 \
  --host-record=web.test,203.0.113.2 --host-record=other.test,203.0.113.3 --log-queries \
  --log-facility=/run/stub-dns.log --pid-file=/run/stub-dns.pid --user=root
trap 'kill $server $wanserver $wan6server $webserver $otherserver $(cat /run/stub-dns.pid 2>/dev/null) 2>/dev/null || true' EXIT
run netcell create agent --mode private --egress deny --allow web.test:80/tcp --dns 198.51.100.53
run netcell exec agent -- cat /etc/resolv.conf
run netcell exec agent -- getent hosts web.test
run netcell exec agent -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 web.test 80'
check 'netcell exec agent -- nc -z -w 2 web.test 80' "the allowed name's server was not reachable"
echo "other.test is refused by the resolver (and never asked upstream), its address stays closed:"
run netcell exec agent -- dig +time=1 +tries=1 +noall +comments other.test
check '! netcell exec agent -- getent hosts other.test' "a name the policy does not allow resolved"
check '! grep -q "other.test" /run/stub-dns.log' "a refused name reached the upstream server"
code=0
netcell exec agent -- timeout 1 nc -z -w 5 203.0.113.3 80 2>/dev/null || code=$?
check '[ "$code" = 1 ]' "203.0.113.3 (never returned for an allowed name) was not refused at once"
echo "connect to 203.0.113.3:80 from agent: refused at once"
echo "and DNS straight to the upstream is refused too: the resolver is the namespace's only DNS"
check '! netcell exec agent -- dig +time=1 +tries=1 @198.51.100.53 web.test' "DNS to another server worked"
run netcell policy show agent
sleep 0.3
say "The denied-flow log: refused names and refused flows, one line each:"
run netcell log agent
check 'netcell log agent --json | grep -q other.test' "the refused name is not in the log"
run netcell destroy agent
kill "$(cat /run/stub-dns.pid)" 2>/dev/null || true

say "bridged mode: a named network whose namespaces reach each other, but not the host."
run netcell network create lan --subnet 10.50.0.0/24
run netcell create n1 --network lan
run netcell create n2 --network lan
run netcell network list
run netcell exec n1 -- ping -c 1 -W 1 10.50.0.3
if netcell exec n1 -- nc -z -w 1 203.0.113.1 8000; then
  echo "demo: FAILED: the host is reachable from a bridged namespace" >&2; exit 1
fi
echo "n1 -> host 203.0.113.1:8000: blocked, as the network has no --host-access"
run netcell stats n1
kill $webserver 2>/dev/null || true
run netcell destroy web other job n1 n2
check '[ ! -e /run/netcell/service.json ]' "the resolver outlived the last namespace that needed it"
echo "netcell-service (the resolver) stopped with the last namespace that had a policy"
run netcell network rm lan
check '! nft list table ip netcell >/dev/null 2>&1' "netcell's nftables table outlived its last user"
echo "netcell's nftables table is gone with its last user"
if command -v slirp4netns >/dev/null; then
  say "Rootless: the same CLI as an unprivileged user (a throwaway uid 4350), enforced by the kernel."
  # What an administrator does once: a /dev/net/tun users may open (here the world's own).
  mkdir -p /dev/net /run/user/4350
  mount -t tmpfs -o mode=0755 netcell-demo-tun /dev/net
  mknod -m 0666 /dev/net/tun c 10 200
  chown 4350:4350 /run/user/4350 && chmod 0700 /run/user/4350
  as_user() {
    setpriv --reuid=4350 --regid=4350 --clear-groups --inh-caps=-all --bounding-set=-all \
      env -i PATH="$PATH" HOME=/run/user/4350 XDG_RUNTIME_DIR=/run/user/4350 "$@"
  }
  rootless() { printf '$ (uid 4350) netcell %s\n' "$*"; as_user "$bin" "$@"; }
  rootless create api --mode private --publish 8090:8000 --allow 203.0.113.2:80/tcp
  rootless info api
  echo "out through the user's slirp4netns, to the one destination its policy allows:"
  rootless exec api -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 203.0.113.2 80'
  check '! as_user "$bin" exec api -- nc -z -w 1 192.0.2.1 8000' "the host is reachable rootless"
  echo "api -> the host's 192.0.2.1:8000: refused"
  as_user "$bin" exec api -- "$responder" 0.0.0.0 8000 'HTTP/1.0 200 OK\r\n\r\nhello from a rootless namespace\n' &
  for _ in $(seq 30); do as_user "$bin" exec api -- nc -z -w 1 127.0.0.1 8000 && break; sleep 0.1; done
  echo "its published port 8090, from the internet (wan):"
  run ip netns exec wan sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 203.0.113.1 8090' |
    tee /run/demo-published.out
  check 'grep -q "hello from a rootless namespace" /run/demo-published.out' \
    "the rootless namespace's published port did not answer"
  check '! as_user "$bin" exec api -- nft flush ruleset 2>/dev/null' "the policy was flushed from inside"
  echo "nft flush ruleset from inside api: Operation not permitted"
  for pid in $(pgrep -u 4350 -x netcell-respond); do kill "$pid"; done
  rootless destroy api
  for _ in $(seq 20); do [ -z "$(pgrep -u 4350 -r R,S,D)" ] && break; sleep 0.1; done
  check '[ -z "$(pgrep -u 4350 -r R,S,D)" ]' "the user's session outlived its last namespace"
  echo "the user's session (netcell-holder and slirp4netns) ended with its last namespace"
fi
kill $wanserver $wan6server 2>/dev/null || true
ip netns del wan

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

#!/usr/bin/env bash
# podman 4.3 (its CNI backend) runs containers on netcell conflists, inside a world
# (tests/support/world.sh), offline: the image is a busybox root file system imported from a
# tarball. Checked through the kernel's view (ip -j, nft -j), real traffic and the run dir.
#   world.sh podman_test.sh PLUGIN NETCELL_CLI RESPONDER
set -euo pipefail
PLUGIN=$1
NETCELL=$2
RESPONDER=$3
[ -n "${NETCELL_TEST_WORLD:-}" ] || { echo "podman_test.sh: run me inside world.sh" >&2; exit 70; }
for tool in podman busybox jq nsenter; do
  command -v "$tool" >/dev/null || { echo "podman_test.sh: $tool is not installed" >&2; exit 1; }
done

fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() { # expect WHAT COMMAND...: the command succeeds
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- podman's state, hidden in the world's mount namespace (cni-clients.md) -------------------
source "$(dirname "$0")/../support/podman_world.sh"
work=$(mktemp -d /run/podman-test.XXXXXX)
podman_world "$PLUGIN" "$work" ncnet
cat >/etc/cni/net.d/ncnet.conflist <<'EOF'
{"cniVersion": "1.0.0", "name": "ncnet",
 "plugins": [{"type": "netcell", "mode": "private",
              "capabilities": {"portMappings": true, "ips": true, "mac": true}}]}
EOF
cat >/etc/cni/net.d/ncbr.conflist <<'EOF'
{"cniVersion": "1.0.0", "name": "ncbr",
 "plugins": [{"type": "netcell", "mode": "bridged", "subnet": "10.78.0.0/24",
              "capabilities": {"portMappings": true, "ips": true, "mac": true}}]}
EOF

# --- "the internet": namespace wan, TEST-NET-3 ----------------------------------------------
ip netns add wan
ip link add wan0 type veth peer name eth0 netns wan
ip addr add 203.0.113.1/24 dev wan0
ip link set wan0 up
ip -n wan addr add 203.0.113.2/24 dev eth0
ip -n wan link set eth0 up
ip -n wan link set lo up
ip route add default via 203.0.113.2
ip netns exec wan "$RESPONDER" 203.0.113.2 7000 hello-from-wan "$work/wan.log" &
wan_pid=$!
servers=("$wan_pid")
cleanup() {
  podman rm -af -t 0 >/dev/null 2>&1 || true
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# PID 1 ends on SIGTERM; httpd in the foreground (-f), in the background of the shell.
WEB='trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'

sandbox() { podman inspect --format '{{.NetworkSettings.SandboxKey}}' "$1"; }
inner_ip() { # inner_ip CONTAINER IFNAME: its IPv4 address/len, read from the kernel
  nsenter --net="$(sandbox "$1")" ip -j addr show dev "$2" |
    jq -r '.[0].addr_info[] | select(.family=="inet") | "\(.local)/\(.prefixlen)"'
}
inner_ip6() { # inner_ip6 CONTAINER IFNAME: its global IPv6 address/len, read from the kernel
  nsenter --net="$(sandbox "$1")" ip -j -6 addr show dev "$2" |
    jq -r '.[0].addr_info[] | select(.scope=="global") | "\(.local)/\(.prefixlen)"'
}
http_get() { # http_get [NETNS] HOST PORT
  local pre=()
  if [ $# -eq 3 ]; then pre=(ip netns exec "$1"); shift; fi
  printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 "${pre[@]}" nc -w 2 "$1" "$2" 2>/dev/null || true
}

# --- a container on a netcell network ----------------------------------------------------------
podman run -d --name web -p 8080:80 localhost/bb sh -c "$WEB" >/dev/null
ip_web=$(inner_ip web eth0)
ip6_web=$(inner_ip6 web eth0)
echo "web: $ip_web $ip6_web"
case "$ip6_web" in fd*::2/64) pass "web is dual-stack: an IPv6 /64 of netcell's pool" ;;
  *) fail "web's IPv6: '$ip6_web'" ;; esac
case "$ip_web" in 10.209.*/30) pass "web has an address of netcell's pool" ;; *) fail "web: '$ip_web'" ;; esac
gw=$(nsenter --net="$(sandbox web)" ip -j route show default | jq -r '.[0].gateway')
expect "web has its default route ($gw)" test -n "$gw" -a "$gw" != null
expect "podman inspect agrees" test "$(podman inspect --format \
  '{{.NetworkSettings.Networks.ncnet.IPAddress}}' web)" = "${ip_web%/*}"
listed=$("$NETCELL" list --json | jq -r '.[] | select(.cni.network=="ncnet") | .cni.ifname')
expect "netcell list shows the attachment with its interface" test "$listed" = eth0
out=$(podman exec web sh -c 'timeout 5 nc 203.0.113.2 7000 </dev/null' || true)
expect "web reaches the internet" test "$out" = hello-from-wan
expect "through NAT (the wan sees the host's address)" grep -qx 203.0.113.1 "$work/wan.log"
sleep 0.5 # httpd starting
expect "-p 8080:80 answers from another host" sh -c \
  "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 ip netns exec wan nc -w 2 203.0.113.1 8080 | grep -q hello-from-podman"
expect "-p 8080:80 answers on the host's address" sh -c \
  "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 nc -w 2 203.0.113.1 8080 | grep -q hello-from-podman"
expect "-p 8080:80 answers on 127.0.0.1" sh -c \
  "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 nc -w 2 127.0.0.1 8080 | grep -q hello-from-podman"

# --- --ip and --mac-address (podman sends them as IP= and MAC= in CNI_ARGS) ------------------
podman run -d --name fixed --ip 10.209.0.102 --mac-address 02:00:00:00:00:42 localhost/bb \
  sh -c 'trap "exit 0" TERM; sleep 600 & wait' >/dev/null
expect "--ip is honoured" test "$(inner_ip fixed eth0)" = 10.209.0.102/30
mac=$(nsenter --net="$(sandbox fixed)" ip -j link show dev eth0 | jq -r '.[0].address')
expect "--mac-address is honoured ($mac)" test "$mac" = 02:00:00:00:00:42

# --- restart and network reload keep the address -----------------------------------------------
podman restart -t 1 web >/dev/null
expect "restart keeps the address" test "$(inner_ip web eth0)" = "$ip_web"
sleep 0.5
expect "the published port answers after restart" sh -c \
  "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 ip netns exec wan nc -w 2 203.0.113.1 8080 | grep -q hello-from-podman"
podman network reload web >/dev/null
expect "network reload keeps the address" test "$(inner_ip web eth0)" = "$ip_web"
expect "and its IPv6 address" test "$(inner_ip6 web eth0)" = "$ip6_web"
expect "one attachment per interface after reload" test \
  "$("$NETCELL" list --json | jq '[.[] | select(.cni.network=="ncnet")] | length')" = 2

# --- two networks on one container ----------------------------------------------------------------
podman run -d --name two --network ncnet,ncbr localhost/bb \
  sh -c 'trap "exit 0" TERM; sleep 600 & wait' >/dev/null
addrs=$(printf '%s\n' "$(inner_ip two eth0)" "$(inner_ip two eth1)" | sort | tr '\n' ' ')
case "$addrs" in "10.209."*" 10.78.0."*) pass "two networks: $addrs" ;; *) fail "two networks: '$addrs'" ;; esac
out=$(podman exec two sh -c 'timeout 5 nc 203.0.113.2 7000 </dev/null' || true)
expect "the two-network container reaches the internet" test "$out" = hello-from-wan

# --- podman rm leaves nothing --------------------------------------------------------------------
podman rm -f -t 1 web fixed two >/dev/null
sleep 0.5
links=$(ip -j link | jq -r '[.[].ifname] | sort | join(" ")')
expect "no links left but the world's ($links)" test "$links" = "lo wan0"
expect "no netcell table left" sh -c "! nft -j list tables | jq -e '.nftables[] | select(.table.name? == \"netcell\")' >/dev/null"
# (kept on purpose: the private IPv6 pool's prefix, made once per run dir, docs/ARCHITECTURE.md;
# the host service's log, which outlives the service that a port mapping's [::1] relay started)
left=$(find /run/netcell -type f ! -name lock ! -name '*.saved' ! -path /run/netcell/private-subnet6 \
  ! -path /run/netcell/service.log | sort)
expect "no records, address or port claims left: '$left'" test -z "$left"
expect "netcell list is empty" test "$("$NETCELL" list --json | jq length)" = 0

echo "$fails failed"
[ "$fails" -eq 0 ]

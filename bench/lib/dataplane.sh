#!/usr/bin/env bash
# TCP throughput (iperf3, one stream, short bounded runs) through one namespace set up by TOOL,
# inside a throwaway world:
#   world.sh bench/lib/dataplane.sh netcell|classic SECONDS OUT.json
# Paths: loopback inside the namespace (the ceiling); world -> namespace over the veth; namespace
# -> internet (wan) through NAT; wan -> world:20001 -> namespace:80 (the published port); a
# client in the world itself -> 203.0.113.1:20001; world -> wan over a plain veth (reference).
# netcell only, over IPv6 (world 2001:db8:1::1, wan ::2 and ::3): the client in the world ->
# 127.0.0.1:20001 (output DNAT) beside [::1]:20001 (netcell-service's relay); world -> namespace
# over the veth; namespace -> wan through NAT66; wan -> [2001:db8:1::1]:20001; world -> wan over
# the plain veth (the IPv6 reference).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
world_guard
tool=$1 secs=$2 out=$3
make_internet
case "$tool" in
  netcell)
    "$NETCELL" create d1 --mode private --publish 20001:80 >/dev/null
    ns=d1
    ;;
  classic)
    source "$here/shell_tools.sh"
    ipt_prepare
    ipt_setup 1
    ns=n1
    ;;
  *) echo "dataplane.sh: unknown tool $tool" >&2; exit 2 ;;
esac
addr=$(ns_address "$ns")
if [ "$tool" = netcell ]; then
  ip addr add 2001:db8:1::1/64 dev wan0 nodad
  ip -n wan addr add 2001:db8:1::2/64 dev eth0 nodad
  ip -n wan addr add 2001:db8:1::3/64 dev eth0 nodad
  ip -6 route add default via 2001:db8:1::2
  addr6=$(ip -n "$ns" -6 -o addr show dev eth0 scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
fi

# PATH_NAME SERVER_NS BIND PORT CLIENT_NS TARGET TARGET_PORT: prints "name": Gbit/s (or null)
measure() {
  iperf_gbps "$2" "$3" "$4" "$5" "$6" "$7" "$secs"
  echo "\"$1\": $REPLY"
}

{
  echo "{"
  echo "  $(measure loopback "$ns" 127.0.0.1 5201 "$ns" 127.0.0.1 5201),"
  echo "  $(measure veth_world_to_ns "$ns" 0.0.0.0 5201 - "$addr" 5201),"
  echo "  $(measure nat_ns_to_internet wan 203.0.113.2 5201 "$ns" 203.0.113.2 5201),"
  echo "  $(measure published_wan_to_ns "$ns" 0.0.0.0 80 wan 203.0.113.1 20001),"
  echo "  $(measure published_world_to_ns "$ns" 0.0.0.0 80 - 203.0.113.1 20001),"
  if [ "$tool" = netcell ]; then
    echo "  $(measure published_lo4_to_ns "$ns" 0.0.0.0 80 - 127.0.0.1 20001),"
    echo "  $(measure published_lo6_to_ns "$ns" :: 80 - ::1 20001),"
    echo "  $(measure veth6_world_to_ns "$ns" :: 5201 - "$addr6" 5201),"
    echo "  $(measure nat6_ns_to_internet wan 2001:db8:1::2 5201 "$ns" 2001:db8:1::2 5201),"
    echo "  $(measure published6_wan_to_ns "$ns" :: 80 wan 2001:db8:1::1 20001),"
    echo "  $(measure plain_veth6_world_to_wan wan 2001:db8:1::3 5202 - 2001:db8:1::3 5202),"
  fi
  echo "  $(measure plain_veth_world_to_wan wan 203.0.113.3 5202 - 203.0.113.3 5202)"
  echo "}"
} >"$out"
cat "$out"

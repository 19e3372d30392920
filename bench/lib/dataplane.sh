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

# Every path is measured BENCH_DATAPLANE_ROUNDS times (default 3), the paths in turn, the order
# rotated by one every round, so that a drift of the machine's speed meets all of them alike; a
# path's figure is the median of its rounds (all of them under "rounds").
# PATH_NAME SERVER_NS BIND PORT CLIENT_NS TARGET TARGET_PORT
paths=(
  "loopback $ns 127.0.0.1 5201 $ns 127.0.0.1 5201"
  "veth_world_to_ns $ns 0.0.0.0 5201 - $addr 5201"
  "nat_ns_to_internet wan 203.0.113.2 5201 $ns 203.0.113.2 5201"
  "published_wan_to_ns $ns 0.0.0.0 80 wan 203.0.113.1 20001"
  "published_world_to_ns $ns 0.0.0.0 80 - 203.0.113.1 20001"
)
if [ "$tool" = netcell ]; then
  paths+=(
    "published_lo4_to_ns $ns 0.0.0.0 80 - 127.0.0.1 20001"
    "published_lo6_to_ns $ns :: 80 - ::1 20001"
    "veth6_world_to_ns $ns :: 5201 - $addr6 5201"
    "nat6_ns_to_internet wan 2001:db8:1::2 5201 $ns 2001:db8:1::2 5201"
    "published6_wan_to_ns $ns :: 80 wan 2001:db8:1::1 20001"
    "plain_veth6_world_to_wan wan 2001:db8:1::3 5202 - 2001:db8:1::3 5202"
  )
fi
paths+=("plain_veth_world_to_wan wan 203.0.113.3 5202 - 203.0.113.3 5202")
rounds=${BENCH_DATAPLANE_ROUNDS:-3}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for (( r = 0; r < rounds; r++ )); do
  for (( k = 0; k < ${#paths[@]}; k++ )); do
    read -r name sns bind port cns target tport <<<"${paths[(k + r) % ${#paths[@]}]}"
    iperf_gbps "$sns" "$bind" "$port" "$cns" "$target" "$tport" "$secs"
    echo "$name $REPLY" >>"$results"
  done
done
order=()
for p in "${paths[@]}"; do order+=("${p%% *}"); done
python3 - "$results" "${order[@]}" >"$out" <<'PY'
import json, statistics, sys
rounds = {name: [] for name in sys.argv[2:]}
with open(sys.argv[1]) as f:
    for line in f:
        name, value = line.split()
        rounds[name].append(None if value == "null" else float(value))
# A path with a failed round has no figure: a failure is not averaged away.
out = {name: (None if not v or None in v else round(statistics.median(v), 3))
       for name, v in rounds.items()}
out["rounds"] = rounds
print(json.dumps(out, indent=2))
PY
cat "$out"

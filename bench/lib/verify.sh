#!/usr/bin/env bash
# Checks with real TCP that a benchmarked namespace works (inside the benchmark's world).
#   verify.sh NAMESPACE WORLD_PORT nat|plain OUT_FILE
# nat:   required: egress NAT (a client in the namespace reaches the internet namespace wan at
#        203.0.113.2:7000, and the server sees the world's address 203.0.113.1) and the published
#        port (a client in wan reaches 203.0.113.1:WORLD_PORT, answered by a server on port 80 in
#        the namespace). Informational: the same port from a client in the world itself, and the
#        namespace's address on port 80 straight from the world over the veth.
# plain: required: the veth check only (the kernel floor sets up no NAT and no port).
# Each check is a line "check PASS|FAIL|info-FAIL detail" in OUT_FILE; exit 0 iff all required
# checks passed. Needs $BENCH_RESPONDER (netcell-responder).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
world_guard
ns=$1 port=$2 mode=$3 out=$4
responder=${BENCH_RESPONDER:?}
log=/run/bench-wan-$$.log
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -f "$log"
}
trap cleanup EXIT

# Waits (bounded) until something listens on PORT in namespace NS.
wait_listening() {
  local _
  for _ in $(seq 30); do
    ip netns exec "$1" nc -z -w 1 "$2" "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

addr=$(ns_address "$ns")
timeout 60 ip netns exec "$ns" "$responder" 0.0.0.0 80 "ns-$ns" &
pids+=($!)
wait_listening "$ns" 127.0.0.1 80
failed=0
: >"$out"
record() {  # NAME REQUIRED(1|0) OK(1|0) DETAIL
  local verdict=PASS
  if [ "$3" != 1 ]; then
    if [ "$2" = 1 ]; then verdict=FAIL; failed=1; else verdict=info-FAIL; fi
  fi
  printf '%s %s %s\n' "$1" "$verdict" "$4" >>"$out"
}

required=0
[ "$mode" = plain ] && required=1
got=$(timeout 5 nc -w 3 "$addr" 80 </dev/null 2>&1)
record veth_world_to_ns $required "$([ "$got" = "ns-$ns" ] && echo 1 || echo 0)" \
  "world -> $addr:80 got '$got'"

if [ "$mode" = nat ]; then
  timeout 60 ip netns exec wan "$responder" 203.0.113.2 7000 internet "$log" &
  pids+=($!)
  wait_listening wan 203.0.113.2 7000
  got=$(timeout 5 ip netns exec "$ns" nc -w 3 203.0.113.2 7000 </dev/null 2>&1)
  seen=$(grep -v '^203.0.113.2$' "$log" 2>/dev/null | tr '\n' ' ')
  ok=0
  [ "$got" = internet ] && [ "$seen" = "203.0.113.1 " ] && ok=1
  record egress_nat 1 $ok "$ns -> 203.0.113.2:7000 got '$got', server saw '${seen% }'"
  got=$(timeout 5 ip netns exec wan nc -w 3 203.0.113.1 "$port" </dev/null 2>&1)
  record published_port_from_wan 1 "$([ "$got" = "ns-$ns" ] && echo 1 || echo 0)" \
    "wan -> 203.0.113.1:$port got '$got'"
  got=$(timeout 5 nc -w 3 203.0.113.1 "$port" </dev/null 2>&1)
  record published_port_from_world 0 "$([ "$got" = "ns-$ns" ] && echo 1 || echo 0)" \
    "world -> 203.0.113.1:$port got '$got'"
fi
exit $failed

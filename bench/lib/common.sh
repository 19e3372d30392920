# shellcheck shell=bash
# Shared by the benchmark drivers (sourced, inside a throwaway world). Nothing here runs outside
# one: world_guard refuses.
export LC_ALL=C

world_guard() {
  if [ -z "${NETCELL_TEST_WORLD:-}" ] ||
     [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
    echo "bench: not inside a throwaway world (tests/support/world.sh); refusing" >&2
    exit 70
  fi
}

# "The internet": namespace wan on TEST-NET-3, 203.0.113.2 (and .3), reached from the world over
# veth wan0 (203.0.113.1), which is also the world's default route.
make_internet() {
  ip netns add wan
  ip link add wan0 type veth peer name eth0 netns wan
  ip addr add 203.0.113.1/24 dev wan0
  ip link set wan0 up
  ip -n wan addr add 203.0.113.2/24 dev eth0
  ip -n wan addr add 203.0.113.3/24 dev eth0
  ip -n wan link set eth0 up
  ip -n wan link set lo up
  ip route add default via 203.0.113.2
}

# Microseconds since the epoch, without a fork (bash 5 EPOCHREALTIME).
now_us() {
  local t=$EPOCHREALTIME
  REPLY=$(( ${t%.*} * 1000000 + 10#${t#*.} ))
}

# CPU ticks (user+sys, 1/CLK_TCK s) of this shell's waited-for children and their children, read
# from /proc without a fork: REPLY.
children_ticks() {
  local -a f
  read -r -a f </proc/$BASHPID/stat
  REPLY=$(( f[15] + f[16] ))
}
CLK_TCK=$(getconf CLK_TCK)

# The IPv4 address of eth0 in a namespace.
ns_address() {
  ip -n "$1" -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1]; exit }'
}

# Microseconds as seconds / milliseconds with a fraction, without a fork: REPLY.
us_to_s() { printf -v REPLY '%d.%06d' $(( $1 / 1000000 )) $(( $1 % 1000000 )); }
us_to_ms() { printf -v REPLY '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
ticks_to_s() { printf -v REPLY '%d.%02d' $(( $1 / CLK_TCK )) $(( $1 % CLK_TCK * 100 / CLK_TCK )); }

# TCP throughput of one bounded iperf3 run (one stream):
#   iperf_gbps SERVER_NS BIND PORT CLIENT_NS TARGET TARGET_PORT SECONDS
# The server runs in SERVER_NS on BIND:PORT, the client in CLIENT_NS ("-": the world itself)
# towards TARGET:TARGET_PORT. REPLY: Gbit/s received, or null when the run failed.
iperf_gbps() {
  local sns=$1 bind=$2 port=$3 cns=$4 target=$5 tport=$6 secs=$7 server result _
  local -a client=(iperf3 -c "$target" -p "$tport" -t "$secs" -J)
  [ "$cns" = - ] || client=(ip netns exec "$cns" "${client[@]}")
  REPLY=null
  timeout $(( secs + 20 )) ip netns exec "$sns" iperf3 -s -B "$bind" -p "$port" >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 30); do
    ip netns exec "$sns" nc -z -w 1 "$bind" "$port" 2>/dev/null && break
    sleep 0.1
  done
  if result=$(timeout $(( secs + 10 )) "${client[@]}" 2>/dev/null); then
    REPLY=$(python3 -c 'import json,sys
print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 3))' \
      <<<"$result" 2>/dev/null || echo null)
  fi
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}

#!/usr/bin/env bash
# Rootless netcell beside root netcell and beside the bare uplink helper, in one run, inside a
# throwaway world (needs root; the rootless side runs as a throwaway uid):
#   tests/support/world.sh bench/rootless.sh NETCELL [N]
# Prints, side by side: the CLI's private create p50 as root (linux backend) and rootless with the
# user's session already running (N creates each), the rootless first create that starts the
# session (5 times, median), and iperf3 TCP throughput out of and into a rootless private
# namespace and a bare `slirp4netns --configure --mtu=65520` namespace of the same user, the two
# interleaved, ROUNDS times each way (each round's ratio and their range).
# BENCH_ROOTLESS_ARGS: more options for the rootless creates (e.g. "--mtu 1500").
# BENCH_ROOTLESS_ROUNDS (3), BENCH_ROOTLESS_SECS (2): rounds, and seconds per iperf3 run.
set -euo pipefail
NETCELL=$(readlink -f "$1")
N=${2:-20}
ROUNDS=${BENCH_ROOTLESS_ROUNDS:-3}
SECS=${BENCH_ROOTLESS_SECS:-2}
[ "${NETCELL_TEST_WORLD:-}" = 1 ] || { echo "bench/rootless.sh: run me through world.sh" >&2; exit 70; }
U=4340
XDG=/run/user/$U
mkdir -p "$XDG" /run/bench-home
chown $U:$U "$XDG" /run/bench-home
chmod 0700 "$XDG"
mkdir -p /dev/net
mount -t tmpfs -o mode=0755 netcell-bench-tun /dev/net
mknod -m 0666 /dev/net/tun c 10 200
ip link add wan0 type veth peer name wan1
ip netns add wan
ip link set wan1 netns wan
ip addr add 203.0.113.1/24 dev wan0
ip link set wan0 up
ip -n wan addr add 203.0.113.10/24 dev wan1
ip -n wan link set wan1 up
user() {
  setpriv --reuid=$U --regid=$U --clear-groups --inh-caps=-all --bounding-set=-all \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/run/bench-home XDG_RUNTIME_DIR=$XDG "$@"
}
now_ns() { date +%s%N; }
# Milliseconds (3 decimals) of one run of CMD...
time_ms() {
  local t0 t1
  t0=$(now_ns)
  "$@" >/dev/null
  t1=$(now_ns)
  echo "scale=3; ($t1 - $t0) / 1000000" | bc
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

root_nc() { "$NETCELL" --backend linux --run-dir /run/bench-root "$@"; }

: >/run/bench-first.ms
for i in 1 2 3 4 5; do
  time_ms user "$NETCELL" create first --mode private >>/run/bench-first.ms
  user "$NETCELL" destroy first >/dev/null
done
first_p50=$(median </run/bench-first.ms)

# Root and rootless creates alternate, so that the machine's other load falls on both alike.
user "$NETCELL" create anchor --mode full >/dev/null
: >/run/bench-root.ms
: >/run/bench-rootless.ms
for i in $(seq "$N"); do
  time_ms root_nc create "r$i" --mode private >>/run/bench-root.ms
  # shellcheck disable=SC2086
  time_ms user "$NETCELL" create "u$i" --mode private ${BENCH_ROOTLESS_ARGS:-} \
    >>/run/bench-rootless.ms
done
for i in $(seq "$N"); do root_nc destroy "r$i" >/dev/null; done
root_p50=$(median </run/bench-root.ms)
rootless_p50=$(median </run/bench-rootless.ms)

# iperf3 through the namespace u1 and through a bare helper, one server run each.
iperf_bits() { # iperf_bits CMD-PREFIX... -- [iperf3 ARGS]
  for _ in $(seq 50); do  # the last server has let go of its port
    ip netns exec wan ss -Hltn 'sport = :5201' | grep -q . || break
    sleep 0.1
  done
  ip netns exec wan iperf3 -s -D -1 -p 5201 --pidfile /run/bench-iperf.pid >/dev/null
  sleep 0.2
  "$@" -J 2>/dev/null | jq -r '.end.sum_received.bits_per_second // 0 | floor'
}
cat >/run/bench-bare.sh <<'EOF'
set -u
unshare --user --map-root-user --net sleep 600 &
ns=$!
sleep 0.3
slirp4netns --configure --mtu=65520 --disable-host-loopback --disable-dns "$ns" tap0 \
  >/dev/null 2>&1 &
helper=$!
for _ in $(seq 50); do
  nsenter --preserve-credentials -U -n -t "$ns" ip -br addr show tap0 2>/dev/null |
    grep -q 10.0.2 && break
  sleep 0.1
done
echo "$ns $helper"
EOF
read -r bare_ns bare_helper < <(user bash /run/bench-bare.sh)
bare() { user nsenter --preserve-credentials -U -n -t "$bare_ns" "$@"; }
ns() { user "$NETCELL" exec u1 -- "$@"; }
# ROUNDS rounds, each measuring both paths each way, the two paths in an order that alternates
# from round to round, so that the machine's other load falls on both alike.
: >/run/bench-tcp.txt
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="ns bare"; else order="bare ns"; fi
  for dir in out in; do
    flag=
    [ $dir = in ] && flag=-R
    for path in $order; do
      # shellcheck disable=SC2086
      echo "$r $dir $path $(iperf_bits $path iperf3 -c 203.0.113.10 -t "$SECS" $flag)" \
        >>/run/bench-tcp.txt
    done
  done
done
kill "$bare_helper" "$bare_ns"

for i in $(seq "$N"); do user "$NETCELL" destroy "u$i" >/dev/null; done
user "$NETCELL" destroy anchor >/dev/null

gbit() { echo "scale=2; $1 / 1000000000" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
bits_of() { awk -v r="$1" -v d="$2" -v p="$3" '$1 == r && $2 == d && $3 == p {print $4}' \
  /run/bench-tcp.txt; }
printf '| measure (same run, N = %s) | root (linux) | rootless | rootless / root |\n' "$N"
printf '|---|---|---|---|\n'
printf '| private create p50, CLI (ms) | %s | %s | %sx |\n' "$root_p50" "$rootless_p50" \
  "$(ratio "$rootless_p50" "$root_p50")"
printf '| first rootless create, session start included, median of 5 (ms) | | %s | |\n' \
  "$first_p50"
printf '\n| TCP, iperf3 %s s (Gbit/s), round | bare slirp4netns | rootless namespace | namespace / bare |\n' \
  "$SECS"
printf '|---|---|---|---|\n'
for dir in out in; do
  ratios=
  for r in $(seq "$ROUNDS"); do
    b=$(bits_of "$r" $dir bare)
    n=$(bits_of "$r" $dir ns)
    q=$( [ "$b" -gt 0 ] && ratio "$n" "$b" || echo 0)
    ratios="$ratios $q"
    label="into the namespace"
    [ $dir = out ] && label="out of the namespace"
    printf '| %s, %s | %s | %s | %s |\n' "$label" "$r" "$(gbit "$b")" "$(gbit "$n")" "$q"
  done
  # shellcheck disable=SC2086
  printf '| %s: namespace / bare, range of the rounds | | | %s |\n' "$dir" \
    "$(printf '%s\n' $ratios | sort -n | sed -n '1p;$p' | paste -sd '-')"
  b=$(awk -v d=$dir '$2 == d && $3 == "bare" {s += $4} END {printf "%.0f", s}' /run/bench-tcp.txt)
  n=$(awk -v d=$dir '$2 == d && $3 == "ns" {s += $4} END {printf "%.0f", s}' /run/bench-tcp.txt)
  printf '| %s: all rounds (sum of the namespace / sum of bare) | | | %s |\n' "$dir" \
    "$( [ "$b" -gt 0 ] && ratio "$n" "$b" || echo 0)"
done

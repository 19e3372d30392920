#!/usr/bin/env bash
# 07 — bandwidth limits: `--rate 1mbit` caps a private namespace at 1 Mbit/s each way with a tbf
# qdisc on both ends of its veth (the namespace end shapes its upload, the host end its
# download); iperf3 measures both directions, which must land within 15% of the limit.
set -euo pipefail
source "$(dirname "$0")/common.sh"

cleanup() {
  set +e
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  "$NETCELL" destroy slow >/dev/null 2>&1
}
trap cleanup EXIT

say "A private namespace limited to 1 Mbit/s in both directions."
run "$NETCELL" create slow --mode private --rate 1mbit
run "$NETCELL" info slow
info=$("$NETCELL" info slow --json)
host_if=$(jq -r .host_interface <<<"$info")
ns_addr=$(jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]' <<<"$info" | cut -d/ -f1)
check '[ "$(jq .rate.egress_bps <<<"$info")" = 1000000 ]' "info records the egress limit"
check '[ "$(jq .rate.ingress_bps <<<"$info")" = 1000000 ]' "info records the ingress limit"

say "The kernel's view: a tbf root qdisc on each end (tc shows the rate in bytes per second)."
run tc -n slow qdisc show dev eth0
run tc qdisc show dev "$host_if"
inside=$(tc -j -n slow qdisc show dev eth0 | jq -r '.[] | select(.root) | "\(.kind) \(.options.rate)"')
outside=$(tc -j qdisc show dev "$host_if" | jq -r '.[] | select(.root) | "\(.kind) \(.options.rate)"')
check '[ "$inside" = "tbf 125000" ]' "eth0 in the namespace: tbf at 125000 B/s (its upload)"
check '[ "$outside" = "tbf 125000" ]' "$host_if in the world: tbf at 125000 B/s (its download)"

say "Measure with iperf3 (2 s each way): the server runs inside the namespace."
ip netns exec slow iperf3 -s -B "$ns_addr" -p 5201 >/dev/null 2>&1 & server=$!
wait_listening slow 5201
# Prints the receiver's throughput in Mbit/s; fails the example when outside 1 Mbit/s ± 15%.
measure() {
  local what=$1; shift
  local bps mbit
  bps=$(timeout 10 iperf3 -c "$ns_addr" -p 5201 -t 2 -J "$@" | jq '.end.sum_received.bits_per_second')
  mbit=$(awk -v b="$bps" 'BEGIN { printf "%.3f", b / 1e6 }')
  echo "$what: configured 1 Mbit/s, measured $mbit Mbit/s"
  check "awk -v b=$bps 'BEGIN { exit !(b >= 850000 && b <= 1150000) }'" "$what within 15% of 1 Mbit/s"
}
measure "download (world -> namespace)"
measure "upload (namespace -> world)" -R

say "Destroy: the namespace, its veth and both qdiscs are gone."
kill "$server"; wait "$server" 2>/dev/null || true; server=
run "$NETCELL" destroy slow
for _ in $(seq 50); do ip link show dev "$host_if" >/dev/null 2>&1 || break; sleep 0.1; done
check '! ip link show dev "$host_if" >/dev/null 2>&1' "$host_if is gone"
check '[ -z "$(tc -j qdisc show | jq -r ".[] | select(.kind == \"tbf\") | .dev")" ]' "no tbf qdisc is left"

#!/usr/bin/env bash
# Runs while all N namespaces of a policy benchmark exist (netcell-bench-policy's or the CLI
# loop's check, inside their world): the data plane through an allowed rule, the policy's refusal,
# and every namespace's first lookup through netcell's resolver.
#   policy_check.sh none|rules N full|light OUT_BASE SECONDS ROUNDS
# Namespaces n1..nN (rules: each with netcell-bench-policy's policy; n<i> may reach
# 203.0.113.0/24 on TCP port 30000+i, and names under n<i>.test).
# full, rules: ROUNDS × iperf3 (SECONDS each) from nN to wan:30000+N through its allowed rule,
#   alternating with the same path from x0, a namespace without a policy made for it here; nN to
#   a listening wan:7000 must be refused at once (x0's connect there is the positive control);
#   then every namespace looks up q.n<i>.test once through its resolver and once more (the
#   answers' addresses are then learned: one element each in pol_learned_ip), with the host
#   service's memory before and after.
# full, none: ROUNDS × iperf3 from nN to wan:30000+N (the same path, every namespace without a
#   policy); nN reaches wan:7000.
# light: the connects only (and for rules the lookups): no iperf3.
# Writes OUT_BASE.verify (lines "check PASS|FAIL detail") and OUT_BASE.check.json; exit 0 iff every
# check passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
source "$here/policy.sh"
world_guard
variant=$1 n=$2 level=$3 base=$4 secs=$5 rounds=$6
last=n$n port=$(( 30000 + n ))
pids=()
cleanup_servers() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=()
}
cleanup() {
  cleanup_servers
  [ "$variant" = rules ] && [ "$level" = full ] && "$NETCELL" destroy x0 >/dev/null 2>&1
}
trap cleanup EXIT
checks_start "$base.verify"
wait_listening() {
  local _
  for _ in $(seq 30); do
    ip netns exec wan nc -z -w 1 203.0.113.2 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
json_list() { local IFS=,; REPLY="[$*]"; }

timeout 300 ip netns exec wan "$BENCH_RESPONDER" 203.0.113.2 7000 internet &
pids+=($!)
wait_listening 7000
policy_gbps=() none_gbps=()
if [ "$variant" = rules ]; then
  if [ "$level" = full ]; then
    "$NETCELL" create x0 --mode private --dns "$STUB" >/dev/null
    for (( r = 1; r <= rounds; r++ )); do
      iperf_gbps wan 203.0.113.2 "$port" "$last" 203.0.113.2 "$port" "$secs"
      policy_gbps+=("$REPLY")
      iperf_gbps wan 203.0.113.2 "$port" x0 203.0.113.2 "$port" "$secs"
      none_gbps+=("$REPLY")
    done
    ok=1
    for g in "${policy_gbps[@]}" "${none_gbps[@]}"; do [ "$g" != null ] || ok=0; done
    record allowed_rule_iperf3 $ok "$last -> 203.0.113.2:$port (allowed rule):" \
      "${policy_gbps[*]} Gbit/s; x0 (no policy): ${none_gbps[*]} Gbit/s"
    got=$(timeout 5 ip netns exec x0 nc -w 3 203.0.113.2 7000 </dev/null 2>&1)
    [ "$got" = internet ] && ok=1 || ok=0
    record no_policy_reaches_7000 $ok "x0 -> 203.0.113.2:7000 got '$got'"
  else
    timeout 60 ip netns exec wan "$BENCH_RESPONDER" 203.0.113.2 "$port" allowed &
    pids+=($!)
    wait_listening "$port"
    got=$(timeout 5 ip netns exec "$last" nc -w 3 203.0.113.2 "$port" </dev/null 2>&1)
    [ "$got" = allowed ] && ok=1 || ok=0
    record allowed_rule_connect $ok "$last -> 203.0.113.2:$port (allowed rule) got '$got'"
  fi
  refused_fast "$last" 203.0.113.2 7000 && ok=1 || ok=0
  record denied_by_default $ok "$last -> 203.0.113.2:7000 (a listening server, no rule)" \
    "refused at once"
  cleanup_servers

  # Every namespace's first lookup, then a second one; the service's memory around them.
  service_pid; spid=$REPLY
  vm_kib "$spid" VmRSS; rss_before=$REPLY
  dns_paths first n gateway 'q.n%i.test' >"$base.dns-paths"
  neigh_overflows; neigh0=$REPLY
  # Up to 6 tries of 1 s, as a stub resolver would retry: past ~500 namespaces the machine's ARP
  # table may drop a first packet (neigh_overflows), and the kernel frees an entry for a new one
  # only once it is 5 s old.
  once=$("$NETCELL_DNS_BIN" once --tries=6 --out="$base.dns-first.csv" "$base.dns-paths")
  again=$(sed 's/^first /again /' "$base.dns-paths" | "$NETCELL_DNS_BIN" once --tries=6 /dev/stdin)
  neigh_overflows; neigh_overflow=$(( REPLY - neigh0 ))
  vm_kib "$spid" VmRSS; rss_after=$REPLY
  vm_kib "$spid" VmHWM; hwm=$REPLY
  answered=$(python3 -c 'import json, sys
print(json.loads(sys.argv[1])["first"]["ok"], json.loads(sys.argv[2])["again"]["ok"])' \
    "$once" "$again" 2>/dev/null || echo "0 0")
  learned=$(nft -j list set ip netcell pol_learned_ip | python3 -c '
import json, sys
n = 0
for item in json.load(sys.stdin)["nftables"]:
    n += len(item.get("set", {}).get("elem", []))
print(n)' 2>/dev/null || echo 0)
  [ "$answered" = "$n $n" ] && ok=1 || ok=0
  record every_lookup_answered $ok "first and second lookups answered (NOERROR, an A record;" \
    "up to 6 tries): $answered of $n each; kernel 'neighbor table overflow' messages meanwhile" \
    "(machine-wide): $neigh_overflow"
  [ "$learned" -ge "$n" ] && ok=1 || ok=0
  record answers_learned $ok "elements in pol_learned_ip: $learned (namespaces: $n)"
  (( spid > 0 )) && [ "$rss_after" != null ] && ok=1 || ok=0
  record service_running $ok "netcell-service pid $spid, VmRSS $rss_before -> $rss_after KiB," \
    "VmHWM $hwm KiB"
else
  if [ "$level" = full ]; then
    for (( r = 1; r <= rounds; r++ )); do
      iperf_gbps wan 203.0.113.2 "$port" "$last" 203.0.113.2 "$port" "$secs"
      none_gbps+=("$REPLY")
    done
    ok=1
    for g in "${none_gbps[@]}"; do [ "$g" != null ] || ok=0; done
    record no_policy_iperf3 $ok "$last -> 203.0.113.2:$port: ${none_gbps[*]} Gbit/s"
  fi
  got=$(timeout 5 ip netns exec "$last" nc -w 3 203.0.113.2 7000 </dev/null 2>&1)
  [ "$got" = internet ] && ok=1 || ok=0
  record egress_without_policy $ok "$last -> 203.0.113.2:7000 got '$got'"
fi

json_list "${policy_gbps[@]}"; pj=$REPLY
json_list "${none_gbps[@]}"; nj=$REPLY
cat >"$base.check.json" <<JSON
{"variant": "$variant", "n": $n, "level": "$level", "iperf_seconds": $secs,
 "iperf_policy_gbps": $pj, "iperf_no_policy_gbps": $nj,
 "service_rss_kib_before_lookups": ${rss_before:-null},
 "service_rss_kib_after_lookups": ${rss_after:-null},
 "service_hwm_kib": ${hwm:-null}, "dns_first": ${once:-null}, "dns_again": ${again:-null},
 "learned_elements": ${learned:-null}, "neighbour_overflow_messages": ${neigh_overflow:-null},
 "failed": $CHECKS_FAILED}
JSON
exit $CHECKS_FAILED

#!/usr/bin/env bash
# netcell's resolver against a plain forwarder, in one throwaway world:
#   world.sh bench/lib/resolver.sh M OUT_BASE LOAD_SECONDS LATENCY_COUNT ROUNDS RATE
# The stub upstream (policy.sh) answers in `wan`. Namespaces, made with the CLI (untimed):
#   n1..nM  private, each with netcell-bench-policy's policy (20 address rules, 5 domain rules;
#           names under n<i>.test allowed): their DNS is netcell's resolver (netcell-service,
#           started by the first), reached at their gateway
#   b1..bM  bridged on network dnsnet (10.210.0.0/22, NAT, host access), no policy: they reach
#           dnsmasq as a plain forwarder on the host (the world) at the bridge's 10.210.0.1
#           (--no-resolv --server=STUB --cache-size=0, as many queries in flight as netcell's
#           resolver allows: --dns-forward-max=4096), and the stub directly
#   d1      private, no policy: the stub directly, over the same path shape as n1's upstream
# Then: every namespace's first lookup (all must be answered); latency (LATENCY_COUNT rounds, one
# query per path in turn, one outstanding, a round every 2 ms at most: netcell n1, netcell with a
# new name every query n2, stub from d1, dnsmasq from b1, stub from b1); across the M namespaces
# of each kind (netcell, dnsmasq, stub direct, in turn): ROUNDS × LOAD_SECONDS of paced load, RATE queries a second per
# namespace (the issue's shape: 100 namespaces × 100), then once LOAD_SECONDS of closed-loop load
# without a cap (the ceiling); 4 queries outstanding per namespace at most; the memory of the
# three servers.
# Writes OUT_BASE.json, OUT_BASE.verify and OUT_BASE.latency.csv; exit 0 iff every check passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
source "$here/policy.sh"
world_guard
m=$1 base=$2 secs=$3 count=$4 rounds=$5 rate=$6
window=4
bound=$(( 300 + rounds * 3 * (secs + 5) + count / 100 ))
fwd=10.210.0.1
pids=()
cleanup() {
  local p
  # The host service too: it would keep this world's namespaces alive once the world is gone.
  service_pid
  (( REPLY > 0 )) && kill "$REPLY" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
checks_start "$base.verify"
field() {  # JSON LABEL KEY: REPLY
  REPLY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' \
    "$@" 2>/dev/null || echo 0)
}

make_internet
stub_start "$bound" || { record stub_up 0 "the stub did not answer"; exit 1; }
pids+=("$STUB_PID")
"$NETCELL" network create dnsnet --subnet 10.210.0.0/22 --nat --host-access >/dev/null
mapfile -t policy_args < <("$NETCELL_POLICY_BIN" --print-cli-args="$m")
now_us; t0=$REPLY
for (( i = 1; i <= m; i++ )); do
  read -r -a a <<<"${policy_args[i - 1]}"
  "$NETCELL" create "n$i" --mode private --dns "$STUB" "${a[@]}" >/dev/null ||
    { record create_policy_namespaces 0 "create n$i failed"; exit 1; }
  "$NETCELL" create "b$i" --mode bridged --network dnsnet --dns "$STUB" >/dev/null ||
    { record create_bridged_namespaces 0 "create b$i failed"; exit 1; }
done
"$NETCELL" create d1 --mode private --dns "$STUB" >/dev/null
now_us; us_to_s $(( REPLY - t0 )); made_s=$REPLY
timeout "$bound" dnsmasq --keep-in-foreground --no-resolv --no-hosts --server="$STUB" \
  --bind-interfaces --listen-address="$fwd" --cache-size=0 --dns-forward-max=4096 --user=root \
  --pid-file= &
pids+=($!)
fwd_timeout=$!
sleep 0.2
fwd_pid=$(ps -o pid= --ppid "$fwd_timeout" | tr -d ' ')
service_pid; spid=$REPLY
stub_pid=$STUB_PID
# `timeout` runs the stub as its child.
stub_pid=$(ps -o pid= --ppid "$STUB_PID" 2>/dev/null | tr -d ' ')
stub_pid=${stub_pid:-$STUB_PID}

# Every namespace's first lookup: netcell learns each answer's address before releasing it.
{
  dns_paths netcell n gateway 'q.n%i.test'
  dns_paths dnsmasq b "$fwd" 'q.n%i.test'
  dns_paths stub b "$STUB" 'q.n%i.test'
  dns_paths stub d "$STUB" 'q.n1.test'
} >"$base.paths"
vm_kib "$spid" VmRSS; service_rss_start=$REPLY
once=$("$NETCELL_DNS_BIN" once --tries=3 --out="$base.first.csv" "$base.paths")
ok=1
for label in netcell dnsmasq stub; do
  field "$once" $label ok; got=$REPLY
  want=$m; [ $label = stub ] && want=$(( m + 1 ))
  [ "$got" = "$want" ] || ok=0
done
record first_lookups $ok "every namespace's first lookup answered: $once"

cat >"$base.latency-paths" <<EOF
netcell n1 $(dns_paths x n gateway x | awk '$2 == "n1" { print $3 }') q.n1.test
netcell_new_name n2 $(dns_paths x n gateway x | awk '$2 == "n2" { print $3 }') r%u.n2.test
stub_from_private d1 $STUB q.n1.test
dnsmasq b1 $fwd q.n1.test
stub_from_bridged b1 $STUB q.n1.test
EOF
# A round every 2 ms at the most: each namespace asks at most 500 a second, under the resolver's
# limit of 1,000 a second per namespace (a query over it is dropped, and would count as lost).
latency=$("$NETCELL_DNS_BIN" latency --count="$count" --warmup=20 --round-us=2000 \
  --out="$base.latency.csv" "$base.latency-paths")
ok=1
lost_all=0
for label in netcell netcell_new_name stub_from_private dnsmasq stub_from_bridged; do
  field "$latency" $label lost; lost_all=$(( lost_all + REPLY ))
  # One in a thousand may go astray on this busy machine (it is counted in the tables).
  (( REPLY * 1000 <= count )) || ok=0
done
record latency_lookups $ok "latency queries answered ($count per path; lost in all:" \
  "$lost_all, at most one in a thousand per path allowed)"

{
  dns_paths netcell n gateway 'q.n%i.test'
  dns_paths dnsmasq b "$fwd" 'q.n%i.test'
  dns_paths stub b "$STUB" 'q.n%i.test'
} >"$base.load-paths"
loads=()
ok=1
for (( r = 1; r <= rounds; r++ )); do
  out=$("$NETCELL_DNS_BIN" load --seconds="$secs" --window=$window --rate="$rate" \
    "$base.load-paths")
  loads+=("$out")
  for label in netcell dnsmasq stub; do
    field "$out" $label ok; [ "${REPLY%.*}" -gt 0 ] 2>/dev/null || ok=0
  done
done
ceiling=$("$NETCELL_DNS_BIN" load --seconds="$secs" --window=$window --rate=0 "$base.load-paths")
for label in netcell dnsmasq stub; do
  field "$ceiling" $label ok; [ "${REPLY%.*}" -gt 0 ] 2>/dev/null || ok=0
done
record load_answered $ok "every load run had answers ($rounds paced rounds at $rate a second" \
  "per namespace, one without a cap)"

vm_kib "$spid" VmRSS; service_rss=$REPLY
vm_kib "$spid" VmHWM; service_hwm=$REPLY
vm_kib "$fwd_pid" VmRSS; fwd_rss=$REPLY
vm_kib "$fwd_pid" VmHWM; fwd_hwm=$REPLY
vm_kib "$stub_pid" VmRSS; stub_rss=$REPLY
(( spid > 0 )) && [ "$service_rss" != null ] && ok=1 || ok=0
record service_running $ok "netcell-service pid $spid VmRSS $service_rss KiB; dnsmasq" \
  "forwarder pid $fwd_pid VmRSS $fwd_rss KiB"
IFS=, ; load_json="[${loads[*]}]"; unset IFS
cat >"$base.json" <<JSON
{"namespaces_each": $m, "create_all_s": $made_s, "window": $window, "rate_per_namespace": $rate,
 "first": $once, "latency": $latency, "load": $load_json, "ceiling": $ceiling,
 "rss_kib": {"netcell_service": $service_rss, "netcell_service_hwm": $service_hwm,
             "netcell_service_at_start": $service_rss_start,
             "dnsmasq_forwarder": $fwd_rss, "dnsmasq_forwarder_hwm": $fwd_hwm, "stub": $stub_rss},
 "failed": $CHECKS_FAILED}
JSON
cat "$base.json"
exit $CHECKS_FAILED

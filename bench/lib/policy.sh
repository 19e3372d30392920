# shellcheck shell=bash
# Shared by the egress-policy and resolver benchmarks (sourced inside a world, after common.sh).
#
# The stub upstream: an authoritative dnsmasq in `wan` on 192.0.2.53 that answers every name under
# .test with 198.51.100.40 (TTL 600 s, so that no learned address expires during a run) and
# nothing else; it forwards nothing and logs nothing. Every namespace of these benchmarks names it
# as its DNS server (--dns 192.0.2.53): a policy namespace through netcell's resolver, the others
# directly.
STUB=192.0.2.53
STUB_ANSWER=198.51.100.40

# stub_start SECONDS: starts the stub, bounded by `timeout SECONDS`; STUB_PID.
stub_start() {
  ip -n wan addr add "$STUB/32" dev lo
  timeout "$1" ip netns exec wan dnsmasq --keep-in-foreground --no-resolv --no-hosts \
    --bind-interfaces --listen-address="$STUB" --user=root --pid-file= --local-ttl=600 \
    --address=/test/$STUB_ANSWER --dns-forward-max=4096 &
  STUB_PID=$!
  local _
  for _ in $(seq 50); do
    [ -n "$(ip netns exec wan dig +short +time=1 +tries=1 @"$STUB" up.test 2>/dev/null)" ] &&
      return 0
    sleep 0.1
  done
  echo "policy.sh: the stub DNS server did not answer" >&2
  return 1
}

# The pid of the host service of the world's netcell (0 when it does not run): REPLY.
service_pid() {
  REPLY=$(python3 -c 'import json; print(json.load(open("/run/netcell/service.json"))["pid"])' \
    2>/dev/null || echo 0)
}

# vm_kib PID FIELD: FIELD (VmRSS, VmHWM) of a process in KiB, or null: REPLY.
vm_kib() {
  REPLY=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null)
  REPLY=${REPLY:-null}
}

# Whether a TCP connect from namespace NS to HOST:PORT is refused at once (a reset or an ICMP
# error, within 2 s): the policy's reject, not a timeout.
refused_fast() {
  local t0 t1
  now_us; t0=$REPLY
  if timeout 5 ip netns exec "$1" nc -z -w 3 "$2" "$3" 2>/dev/null; then return 1; fi
  now_us; t1=$REPLY
  (( t1 - t0 < 2000000 ))
}

# dns_paths LABEL PREFIX SERVER NAME: the netcell-bench-dns paths of the world's netcell namespaces
# whose name is PREFIX and a number, in that number's order, one line each: "LABEL NS SERVER NAME",
# where SERVER "gateway" is the namespace's gateway (its resolver when it has a policy) and "%i"
# in NAME is the namespace's number.
dns_paths() {
  "$NETCELL" list --json | python3 -c '
import json, re, sys
label, prefix, server, name = sys.argv[1:5]
rows = []
for ns in json.load(sys.stdin):
    m = re.fullmatch(re.escape(prefix) + r"(\d+)", ns["name"])
    if m:
        to = ns.get("gateway") if server == "gateway" else server
        rows.append((int(m.group(1)), ns["name"], to))
for i, ns, to in sorted(rows):
    print(label, ns, to, name.replace("%i", str(i)))' "$@"
}

# How many "neighbor table overflow" lines the kernel log holds now (read only): REPLY. The ARP
# table's limit (gc_thresh3, 1,024 entries by default) is one for the whole machine, every
# network namespace and every concurrent run included; each namespace that talks to its gateway
# holds two entries (its gateway's inside, its own on the host end), so a thousand namespaces
# that all send at once go past it and the kernel drops some of their first packets.
neigh_overflows() {
  REPLY=$(dmesg 2>/dev/null | grep -c 'neighbor table overflow')
  REPLY=${REPLY:-0}
}

# checks_start FILE: the check lines of a run go to FILE (emptied), CHECKS_FAILED counts the
# failed ones; record NAME OK(1|0) DETAIL... writes "NAME PASS|FAIL DETAIL" (the DETAIL words
# joined by spaces).
checks_start() {
  CHECKS_FILE=$1 CHECKS_FAILED=0
  : >"$CHECKS_FILE"
}
record() {
  local verdict=PASS
  [ "$2" = 1 ] || { verdict=FAIL; CHECKS_FAILED=$(( CHECKS_FAILED + 1 )); }
  printf '%s %s %s\n' "$1" "$verdict" "${*:3}" >>"$CHECKS_FILE"
}

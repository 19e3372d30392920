#!/usr/bin/env bash
# `podman run --rm localhost/bb true` (podman 4.3, its CNI backend, offline; tests/support/
# podman_world.sh) on three networks of one podman in one world, ROUNDS times each, the order of
# the three rotating every round: `none` (the floor: a container without a network), `refnet`
# (the reference chain bridge + host-local + portmap, as the cni tool and podman's own default
# conflist have them) and `ncnet` (netcell's plugin, mode private). A warm-up run on each comes
# first. Writes
#   BASE.csv    round,network,ms
#   BASE.json   p50/p95 per network, and a check that a container on each network has its address
#   world.sh bench/lib/podman_run.sh NETCELL_CNI ROUNDS BASE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plugin=$1 rounds=$2 base=$3
for tool in podman busybox jq; do
  command -v "$tool" >/dev/null || { echo "podman_run.sh: $tool is not installed" >&2; exit 1; }
done
source "$here/../../tests/support/podman_world.sh"
work=$(mktemp -d /run/podman-bench.XXXXXX)
podman_world "$plugin" "$work" ncnet
cat >/etc/cni/net.d/ncnet.conflist <<'CONF'
{"cniVersion": "1.0.0", "name": "ncnet",
 "plugins": [{"type": "netcell", "mode": "private", "capabilities": {"portMappings": true}}]}
CONF
cat >/etc/cni/net.d/refnet.conflist <<'CONF'
{"cniVersion": "1.0.0", "name": "refnet",
 "plugins": [{"type": "bridge", "bridge": "cni-ref0", "isGateway": true, "ipMasq": true,
              "hairpinMode": true,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.201.0.0/16"}]],
                       "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/run/cni-ipam"}},
             {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}
CONF
trap 'podman rm -af -t 0 >/dev/null 2>&1 || true' EXIT
networks=(none refnet ncnet)
# Each network works: the container sees its address (none: only lo).
check=()
for net in "${networks[@]}"; do
  addrs=$(podman run --rm --network "$net" localhost/bb ip -o -4 addr show | awk '{print $2 "=" $4}' |
    grep -v '^lo=' | paste -sd, || true)
  case "$net:$addrs" in
    none:) check+=("\"$net\": \"ok (lo only)\"") ;;
    refnet:eth0=10.201.*) check+=("\"$net\": \"ok ($addrs)\"") ;;
    ncnet:eth0=10.209.*/30) check+=("\"$net\": \"ok ($addrs)\"") ;;
    *) echo "podman_run.sh: a container on $net has '$addrs'" >&2; exit 1 ;;
  esac
done
echo "round,network,ms" >"$base.csv"
for ((r = 1; r <= rounds; r++)); do
  for ((k = 0; k < 3; k++)); do
    net=${networks[$(( (r + k) % 3 ))]}
    t0=$(date +%s%N)
    podman run --rm --network "$net" localhost/bb true
    us=$(( ($(date +%s%N) - t0) / 1000 ))
    printf "%d,%s,%d.%03d\n" "$r" "$net" $((us / 1000)) $((us % 1000)) >>"$base.csv"
  done
done
python3 - "$here" "$base.csv" "$base.json" "$(IFS=,; echo "${check[*]}")" <<'PY'
import csv, json, sys
sys.path.insert(0, sys.argv[1])
from benchstats import median, pct
rows = list(csv.DictReader(open(sys.argv[2])))
out = {"rounds": len(rows) // 3, "check": json.loads("{" + sys.argv[4] + "}")}
for net in ("none", "refnet", "ncnet"):
    ms = [float(r["ms"]) for r in rows if r["network"] == net]
    out[net] = {"p50_ms": median(ms), "p95_ms": pct(ms, 0.95)}
json.dump(out, open(sys.argv[3], "w"), indent=1)
PY

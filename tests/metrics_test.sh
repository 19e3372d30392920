#!/usr/bin/env bash
# `netcell metrics` checked by the real consumer, Prometheus' promtool, and against the kernel.
#   tests/metrics_test.sh format NETCELL   simulation backend, no privileges: promtool check
#       metrics passes (its linter too), the documented names are there with the right values,
#       --textfile writes DIR/netcell.prom atomically and refuses a missing DIR.
#   tests/metrics_test.sh kernel NETCELL   Linux backend, inside a world (tests/support/world.sh):
#       namespaces made by the CLI (private, and two bridged on one network), traffic between
#       them, then promtool check metrics passes and each eth0's received and sent bytes and
#       packets equal what `ip -n NS -j -s link` reports.
#   tests/metrics_test.sh serve NETCELL NETCELL_SERVICE   in a world: netcell-service
#       --metrics-listen scraped by a real Prometheus server; its answer for a namespace's
#       received bytes equals the kernel's; promtool passes on the endpoint's text, which is
#       `netcell metrics`' plus the resolver's counters; the resolver's and the policy's counters
#       count a refused name and a denied flow; a DNS answer does not wait for a blocked
#       scrape; HTTP: 404, 405, HEAD, 431, idle and parallel
#       clients; bad --metrics-listen values get one line; netcell never stops this service.
set -euo pipefail
mode=$1
netcell=$(realpath "$2")
service=${3:+$(realpath "$3")}
# shellcheck source-path=SCRIPTDIR source=support/checks.sh
. "$(dirname "$0")/support/checks.sh" metrics

# promtool check metrics reads the exposition on stdin; it also lints names and help texts.
check_with_promtool() {
  local out
  out=$(promtool check metrics <"$1" 2>&1) || fail "promtool check metrics: $out"
  [ -z "$out" ] || fail "promtool check metrics says: $out"
}

# value FILE NAME LABELS: the value of the sample NAME{LABELS} (LABELS as printed, in order).
value() {
  awk -v key="$2{$3}" '$1 == key { print $2; found = 1 } END { exit !found }' "$1"
}

case $mode in
  format)
    nc=("$netcell" --backend simulation --run-dir "$scratch/run")
    "${nc[@]}" create alpha >/dev/null
    "${nc[@]}" create beta --mode private >/dev/null
    "${nc[@]}" network create lan --subnet 10.77.0.0/24 >/dev/null
    "${nc[@]}" create gamma --network lan >/dev/null
    "${nc[@]}" create delta --network lan >/dev/null
    "${nc[@]}" metrics >"$scratch/out.prom"
    check_with_promtool "$scratch/out.prom"
    version=$("$netcell" --version | sed -n 's/^netcell \([^ ]*\) (revision \([^)]*\))$/\1 \2/p')
    [ "$(value "$scratch/out.prom" netcell_info \
      "version=\"${version% *}\",revision=\"${version#* }\",backend=\"simulation\"")" = 1 ] ||
      fail "netcell_info"
    for m in full:1 private:1 shared:0 bridged:2; do
      [ "$(value "$scratch/out.prom" netcell_namespaces "mode=\"${m%:*}\"")" = "${m#*:}" ] ||
        fail "netcell_namespaces{mode=\"${m%:*}\"} is not ${m#*:}"
    done
    [ "$(value "$scratch/out.prom" netcell_network_namespaces 'network="lan"')" = 2 ] ||
      fail "netcell_network_namespaces{network=\"lan\"}"
    value "$scratch/out.prom" netcell_network_info \
      'network="lan",kind="bridged",subnet="10.77.0.0/24",bridge="ncbr0",nat="false",host_access="false"' \
      >/dev/null || fail "netcell_network_info of lan"
    for direction in receive transmit; do
      for what in bytes packets errors drops; do
        value "$scratch/out.prom" "netcell_interface_${direction}_${what}_total" \
          'namespace="gamma",interface="eth0",mode="bridged",network="lan"' >/dev/null ||
          fail "no netcell_interface_${direction}_${what}_total of gamma's eth0"
      done
    done
    grep -qx 'netcell_metrics_errors 0' "$scratch/out.prom" || fail "netcell_metrics_errors"

    mkdir "$scratch/textfile"
    "${nc[@]}" metrics --textfile "$scratch/textfile"
    [ "$(ls -A "$scratch/textfile")" = netcell.prom ] ||
      fail "--textfile left: $(ls -A "$scratch/textfile")"
    [ "$(stat -c %a "$scratch/textfile/netcell.prom")" = 644 ] || fail "netcell.prom is not 0644"
    # The same collection, but for the timestamps of namespaces made in another second: none.
    diff "$scratch/out.prom" "$scratch/textfile/netcell.prom" >/dev/null ||
      fail "--textfile wrote other metrics than stdout has"
    "${nc[@]}" destroy alpha
    "${nc[@]}" metrics --textfile "$scratch/textfile"
    [ "$(value "$scratch/textfile/netcell.prom" netcell_namespaces 'mode="full"')" = 0 ] ||
      fail "--textfile did not replace netcell.prom"
    if err=$("${nc[@]}" metrics --textfile "$scratch/missing" 2>&1); then
      fail "--textfile into a missing directory succeeded"
    fi
    [ "$(wc -l <<<"$err")" = 1 ] && [[ $err == "netcell: metrics --textfile: "* ]] ||
      fail "--textfile into a missing directory: '$err'"
    ;;

  kernel)
    [ "${NETCELL_TEST_WORLD:-}" = 1 ] || { echo "kernel: run me inside tests/support/world.sh" >&2; exit 77; }
    nc=("$netcell" --backend linux)
    "${nc[@]}" create web --mode private >/dev/null
    "${nc[@]}" network create lan --subnet 10.77.0.0/24 >/dev/null
    "${nc[@]}" create n1 --network lan --ip 10.77.0.11/24 >/dev/null
    "${nc[@]}" create n2 --network lan --ip 10.77.0.12/24 >/dev/null
    "${nc[@]}" exec n1 -- ping -q -c 5 -i 0.2 -s 1000 10.77.0.12 >/dev/null
    "${nc[@]}" exec n2 -- ping -q -c 3 -i 0.2 10.77.0.11 >/dev/null
    "${nc[@]}" exec web -- ping -q -c 3 -i 0.2 127.0.0.1 >/dev/null
    # web's eth0: a few packets toward its gateway, whatever the host answers.
    "${nc[@]}" exec web -- ping -q -c 2 -i 0.2 -W 1 "$("${nc[@]}" info web --json |
      jq -r .gateway)" >/dev/null || true

    declare -A before after
    kernel_counters() {  # NAME: "rx_bytes rx_packets tx_bytes tx_packets" of NAME's eth0
      ip -n "$1" -j -s link show eth0 |
        jq -r '.[0].stats64 | "\(.rx.bytes) \(.rx.packets) \(.tx.bytes) \(.tx.packets)"'
    }
    for ns in web n1 n2; do before[$ns]=$(kernel_counters $ns); done
    "${nc[@]}" metrics >"$scratch/out.prom"
    for ns in web n1 n2; do after[$ns]=$(kernel_counters $ns); done
    check_with_promtool "$scratch/out.prom"
    grep '^netcell_interface_receive_bytes_total' "$scratch/out.prom"
    for ns in web n1 n2; do
      if [ $ns = web ]; then labels="namespace=\"web\",interface=\"eth0\",mode=\"private\",network=\"private\""; else
        labels="namespace=\"$ns\",interface=\"eth0\",mode=\"bridged\",network=\"lan\""
      fi
      read -r -a b <<<"${before[$ns]}"
      read -r -a a <<<"${after[$ns]}"
      i=0
      for metric in receive_bytes receive_packets transmit_bytes transmit_packets; do
        got=$(value "$scratch/out.prom" "netcell_interface_${metric}_total" "$labels") ||
          { fail "no netcell_interface_${metric}_total{$labels}"; i=$((i + 1)); continue; }
        # The kernel's counters before and after the collection: equal unless a packet slipped
        # in between, and then the metric lies between them.
        if [ "${b[i]}" = "${a[i]}" ]; then
          [ "$got" = "${b[i]}" ] || fail "$ns eth0 $metric: metrics $got, ip -s link ${b[i]}"
        elif [ "$got" -lt "${b[i]}" ] || [ "$got" -gt "${a[i]}" ]; then
          fail "$ns eth0 $metric: metrics $got, ip -s link ${b[i]}..${a[i]}"
        fi
        i=$((i + 1))
      done
    done
    rx=$(value "$scratch/out.prom" netcell_interface_receive_bytes_total \
      'namespace="n2",interface="eth0",mode="bridged",network="lan"')
    [ "$rx" -ge 5000 ] || fail "n2's eth0 received only $rx bytes of n1's pings"
    "${nc[@]}" destroy web n1 n2
    "${nc[@]}" network rm lan
    ;;
  serve)
    [ "${NETCELL_TEST_WORLD:-}" = 1 ] || { echo "serve: run me inside tests/support/world.sh" >&2; exit 77; }
    # shellcheck source-path=SCRIPTDIR source=metrics_serve.sh
    source "$(dirname "$0")/metrics_serve.sh"
    ;;
  *)
    echo "usage: $0 format|kernel NETCELL | serve NETCELL NETCELL_SERVICE" >&2
    exit 2
    ;;
esac
[ "$failures" -eq 0 ] || { echo "$failures problem(s) in netcell metrics ($mode)" >&2; exit 1; }
echo "netcell metrics ($mode): promtool check metrics passes; names, values and counters right"

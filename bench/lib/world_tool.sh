#!/usr/bin/env bash
# One tool, one throwaway world: builds "the internet", creates N namespaces with the tool (all
# kept alive), checks the first one with real TCP, tears all of them down, and writes
#   OUT/TOOL-nN.csv           i,setup_ms,teardown_ms[,sub-steps]   (one row per namespace)
#   OUT/TOOL-nN.json          counts, wall and CPU time, memory, verification status
#   OUT/TOOL-nN.verify        the verification lines
# Run through tests/support/world.sh (bench/run does):
#   world.sh bench/lib/world_tool.sh TOOL N OUT SETUP_CAP_S TEARDOWN_CAP_S [--pace=RFD,WFD]
# (--pace: pol0, pol, polsteps0, polsteps, v4 and dual only; bench/lib/lockstep.py adds it to run two of
# them in lockstep, each in its own world)
# TOOL: lib cli clirt floor ipt batch cni ncni netavark, podman (podman_run.sh: N rounds of
# `podman run --rm` on no network, the CNI chain and netcell's plugin), or a breakdown run: libsteps (OUT/libsteps-nN.csv,
# per checkpoint of every library create/destroy) or clisteps (the CLI relinked with the
# checkpoint hook: OUT/clisteps-nN.raw, with the shell's own start/return time of each process).
# Egress policies (issue 14; every namespace names the stub DNS server of policy.sh): pol0 / pol,
# the library without / with a policy of 20 address and 5 domain rules (netcell-bench-policy;
# the check while all N exist is policy_check.sh with iperf3 and every namespace's lookup:
# OUT/TOOL-nN.check.json); polsteps0 / polsteps, the same with netcell's checkpoints
# (OUT/TOOL-nN.steps.csv); clipol0 / clipol, the same through the CLI; resolver, netcell's
# resolver against dnsmasq with N namespaces of each kind (resolver.sh: OUT/resolver-nN.json).
# Dual stack (issue 15): v4 / dual, pol0 with IPv4-only (--no-ipv6) / dual-stack namespaces.
# Environment: NETCELL, NETCELL_BENCH_BIN, NETCELL_FLOOR_BIN, NETCELL_STEPS_BIN,
# NETCELL_CLI_STEPS_BIN, NETCELL_POLICY_BIN, NETCELL_POLICY_STEPS_BIN, NETCELL_DNS_BIN,
# NETCELL_SERVICE, BENCH_RESPONDER (paths of the binaries); BENCH_RUN_SUFFIX is appended to
# the output names (a repeated run: OUT/TOOL-nN-r2.csv ...); for the policy tools BENCH_IPERF
# ("SECONDS ROUNDS" of the data-plane check, default "3 6") and BENCH_RESOLVER ("LOAD_SECONDS
# LATENCY_COUNT ROUNDS RATE", default "10 5000 3 100").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
world_guard
tool=$1 n=$2 out=$3 setup_cap=$4 teardown_cap=$5 pace=()
[ $# -ge 6 ] && pace=("$6")
base="$out/$tool-n$n${BENCH_RUN_SUFFIX:-}"
case "$tool" in
  pol0 | pol | polsteps0 | polsteps | clipol0 | clipol | v4 | dual)
    make_internet
    source "$here/policy.sh"
    stub_start $(( ${setup_cap%.*} + ${teardown_cap%.*} + 900 ))
    # Whatever this run started goes with it: the stub, and the host service should a cap or a
    # failure leave a policy namespace behind (it would keep the world's namespaces alive).
    trap 'service_pid; (( REPLY > 0 )) && kill "$REPLY" 2>/dev/null; kill "$STUB_PID" 2>/dev/null' \
      EXIT
    read -r iperf_secs iperf_rounds <<<"${BENCH_IPERF:-3 6}"
    ;;
  resolver) ;;  # resolver.sh builds its own world
  *) make_internet ;;
esac

verify_cmd() {  # NAMESPACE MODE
  printf '%q ' "$here/verify.sh" "$1" 20001 "$2" "$base.verify"
}

case "$tool" in
  lib)
    NETCELL_BENCH_VERIFY="$(verify_cmd l1 nat)" "$NETCELL_BENCH_BIN" --n="$n" --csv="$base.csv" \
      --summary="$base.json" --first-port=20001 --benchmark_out="$base.gbench.json" \
      --benchmark_out_format=json
    ;;
  libsteps)
    "$NETCELL_STEPS_BIN" "$n" "$base.csv"
    ;;
  pol0 | pol | polsteps0 | polsteps | v4 | dual)
    variant=rules family=()
    [[ $tool == *0 || $tool == v4 || $tool == dual ]] && variant=none
    [ "$tool" = v4 ] && family=(--no-ipv6)
    if [[ $tool == polsteps* ]]; then
      "$NETCELL_POLICY_STEPS_BIN" --n="$n" --policy=$variant --csv="$base.csv" \
        --summary="$base.json" --setup-cap="$setup_cap" --teardown-cap="$teardown_cap" \
        --steps="$base.steps.csv" "${pace[@]}"
    else
      NETCELL_BENCH_VERIFY="$(printf '%q ' "$here/policy_check.sh" $variant "$n" full "$base" \
        "$iperf_secs" "$iperf_rounds")" "$NETCELL_POLICY_BIN" --n="$n" --policy=$variant \
        --csv="$base.csv" --summary="$base.json" --setup-cap="$setup_cap" \
        --teardown-cap="$teardown_cap" "${family[@]}" "${pace[@]}"
    fi
    ;;
  resolver)
    read -r r_secs r_count r_rounds r_rate <<<"${BENCH_RESOLVER:-10 5000 3 100}"
    "$here/resolver.sh" "$n" "$base" "$r_secs" "$r_count" "$r_rounds" "$r_rate"
    ;;
  floor)
    NETCELL_BENCH_VERIFY="$(verify_cmd f1 plain)" "$NETCELL_FLOOR_BIN" "$n" "$base.csv" \
      "$setup_cap" >"$base.json"
    ;;
  podman)  # N: rounds of `podman run --rm` on each of three networks
    "$here/podman_run.sh" "$NETCELL_CNI" "$n" "$base"
    ;;
  cni | ncni | netavark | clirt)
    python3 "$here/peers.py" "$tool" "$n" "$base.csv" "$base.json" "$setup_cap" "$teardown_cap" \
      "$(verify_cmd '$NAME' nat)"
    ;;
  ipt | batch | cli | clisteps | clipol0 | clipol)
    source "$here/shell_tools.sh"
    fn=$tool
    steps_raw=""
    if [ "$tool" = clisteps ]; then
      fn=cli
      NETCELL=$NETCELL_CLI_STEPS_BIN
      steps_raw="$base.raw"
      export NETCELL_BENCH_STEPS=$steps_raw
      : >"$steps_raw"
    fi
    "${fn}_prepare" "$n"
    # What starting any process costs in this loop: the lower bound of a one-process-per-operation
    # CLI on this machine (p50 of 100 × /bin/true, timed exactly like a setup).
    exec_true_ms=null
    if [ "$tool" = cli ]; then
      declare -a true_us
      for (( i = 0; i < 100; i++ )); do
        now_us; t0=$REPLY
        /bin/true
        now_us; true_us[i]=$(( REPLY - t0 ))
      done
      mapfile -t sorted < <(printf '%s\n' "${true_us[@]}" | sort -n)
      us_to_ms "${sorted[50]}"; exec_true_ms=$REPLY
    fi
    declare -a setup_us teardown_us
    cap_us=$(( ${setup_cap%.*} * 1000000 ))
    children_ticks; c0=$REPLY
    now_us; start=$REPLY
    created=0
    for (( i = 1; i <= n; i++ )); do
      now_us; t0=$REPLY
      (( t0 - start > cap_us )) && break
      [ -z "$steps_raw" ] || printf 'begin create %d\t%d000\n' "$i" "$t0" >>"$steps_raw"
      "${fn}_setup" "$i"
      now_us; setup_us[i]=$(( REPLY - t0 )); created=$i
      [ -z "$steps_raw" ] || printf 'returned\t%d000\n' "$REPLY" >>"$steps_raw"
    done
    now_us; setup_wall_us=$(( REPLY - start ))
    children_ticks; setup_ticks=$(( REPLY - c0 ))

    # netcell's own processes: none may stay resident after `create`; and the peak RSS of one
    # more create/destroy while all N exist (untimed).
    resident=0 maxrss_create=0 maxrss_destroy=0
    if [ "$tool" = cli ]; then
      world_net=$(readlink /proc/self/ns/net)
      for p in /proc/[0-9]*; do
        [ "$(readlink "$p/exe" 2>/dev/null)" = "$(readlink -f "$NETCELL")" ] &&
          [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$world_net" ] && resident=$(( resident + 1 ))
      done
      maxrss_create=$(python3 -c 'import resource,subprocess,sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$NETCELL" create cx --mode private \
        --publish 19999:80)
      maxrss_destroy=$(python3 -c 'import resource,subprocess,sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$NETCELL" destroy cx)
    fi

    "${fn}_name" 1
    verify_status=0
    if declare -F "${fn}_verify" >/dev/null; then
      "${fn}_verify" "$created" "$base" || verify_status=$?
    elif [ -z "$steps_raw" ]; then
      eval "$(verify_cmd "$REPLY" nat)" || verify_status=$?
    fi

    cap_us=$(( ${teardown_cap%.*} * 1000000 ))
    children_ticks; c0=$REPLY
    now_us; start=$REPLY
    destroyed=0
    for (( i = 1; i <= created; i++ )); do
      now_us; t0=$REPLY
      (( t0 - start > cap_us )) && break
      [ -z "$steps_raw" ] || printf 'begin destroy %d\t%d000\n' "$i" "$t0" >>"$steps_raw"
      "${fn}_teardown" "$i"
      now_us; teardown_us[i]=$(( REPLY - t0 )); destroyed=$i
      [ -z "$steps_raw" ] || printf 'returned\t%d000\n' "$REPLY" >>"$steps_raw"
    done
    now_us; teardown_wall_us=$(( REPLY - start ))
    children_ticks; teardown_ticks=$(( REPLY - c0 ))

    {
      echo "i,setup_ms,teardown_ms"
      for (( i = 1; i <= created; i++ )); do
        us_to_ms "${setup_us[i]}"; s=$REPLY
        t=-1
        if (( i <= destroyed )); then us_to_ms "${teardown_us[i]}"; t=$REPLY; fi
        echo "$i,$s,$t"
      done
    } >"$base.csv"
    us_to_s $setup_wall_us; sw=$REPLY
    us_to_s $teardown_wall_us; tw=$REPLY
    ticks_to_s $setup_ticks; sc=$REPLY
    ticks_to_s $teardown_ticks; tc=$REPLY
    cat >"$base.json" <<EOF
{"requested": $n, "created": $created, "destroyed": $destroyed, "setup_wall_s": $sw,
 "teardown_wall_s": $tw, "setup_cpu_s": $sc, "teardown_cpu_s": $tc,
 "resident_processes": $resident, "cli_maxrss_create_kib": $maxrss_create,
 "cli_maxrss_destroy_kib": $maxrss_destroy, "exec_true_p50_ms": $exec_true_ms,
 "verify_status": $verify_status}
EOF
    ;;
  *)
    echo "world_tool.sh: unknown tool $tool" >&2
    exit 2
    ;;
esac

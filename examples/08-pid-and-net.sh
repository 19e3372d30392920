#!/usr/bin/env bash
# 08 — a PID namespace together with a network namespace. `netcell run --pid-ns` gives the
# command a new PID namespace too, and remounts /proc for it (in a mount namespace of its own):
# the shell is PID 1, ps sees only its own processes and, with --mode full, ip sees only lo.
set -euo pipefail
source "$(dirname "$0")/common.sh"
# run creates an ephemeral namespace and always destroys it; nothing to clean up by hand, but
# make sure a failed assertion does not leave one behind either.
trap '"$NETCELL" gc >/dev/null 2>&1 || true' EXIT

probe='echo "pid=$$"
echo "links=$(ip -j link | jq -r "[.[].ifname] | join(\",\")")"
echo "procs=$(set -- /proc/[0-9]*; echo $#)"
echo "pid1=$(cat /proc/1/comm)"
echo "procdev=$(stat -c %d /proc)"
ps -e -o pid,comm | sed "s/^/  | /"'

say "For comparison, without --pid-ns: the shell gets an ordinary PID and sees every process."
out=$("$NETCELL" run --mode full -- sh -c "$probe")
printf '%s\n' "$out" | grep '=' | sed 's/^/  /'
echo "  (and ps -e lists $(grep -c '^  | *[0-9]' <<<"$out") processes)"
plain_pid=$(sed -n 's/^pid=//p' <<<"$out")
plain_procs=$(sed -n 's/^procs=//p' <<<"$out")
check '[ "$plain_pid" != 1 ]' "without --pid-ns the shell is PID $plain_pid"

say "With --pid-ns:"
echo "\$ $NETCELL run --mode full --pid-ns -- sh -c '...'"
out=$("$NETCELL" run --mode full --pid-ns -- sh -c "$probe")
printf '%s\n' "$out" | sed 's/^/  /'
pid=$(sed -n 's/^pid=//p' <<<"$out")
links=$(sed -n 's/^links=//p' <<<"$out")
procs=$(sed -n 's/^procs=//p' <<<"$out")
pid1=$(sed -n 's/^pid1=//p' <<<"$out")
procdev=$(sed -n 's/^procdev=//p' <<<"$out")
check '[ "$pid" = 1 ]' "echo \$\$ prints 1: the shell is PID 1"
check '[ "$pid1" = sh ]' "/proc/1 is the shell itself"
check '[ "$links" = lo ]' "ip -j link inside sees only lo"
world_procdev=$(stat -c %d /proc)
check '[ "$procdev" != "$world_procdev" ]' \
  "/proc inside is a fresh proc mount (device $procdev, the world's is $world_procdev)"
check '[ "$procs" -le 4 ]' "it lists $procs processes: the shell and the subshell that counts them"
check '[ "$plain_procs" -gt "$procs" ]' "without --pid-ns the same /proc listed $plain_procs"

# Counted from the glob alone: a process of the world may end between the glob and a stat of
# its /proc entry (ls would then fail).
world_entries=(/proc/[0-9]*)
world_procs=${#world_entries[@]}
check '[ "$world_procs" -gt "$procs" ]' \
  "the fresh /proc stayed inside: the world's /proc still lists $world_procs processes"
check '[ -z "$("$NETCELL" list --json | jq -r ".[].name")" ]' "run destroyed its namespaces"
echo "Example 08 done."

#!/usr/bin/env bash
# Progress of long operations, on the simulation backend (no privileges): under a pseudo-terminal
# (util-linux's script) `up` of a 12-namespace topology, `down` of it and `destroy` of many show a
# counter on stderr ("\r[3/12] creating web-3"), erased at the end; with --quiet, or when stderr
# is not a terminal, nothing more is printed than without progress.
#   tests/progress_test.sh NETCELL
set -euo pipefail
netcell=$(realpath "$1")
# shellcheck source-path=SCRIPTDIR source=support/checks.sh
. "$(dirname "$0")/support/checks.sh" progress
nc=("$netcell" --backend simulation --run-dir "$scratch/run")
n=12
{
  echo "name: farm"
  echo "namespaces:"
  for i in $(seq 1 $n); do echo "  web-$i: {mode: private}"; done
} >"$scratch/farm.yaml"

# on_tty CMD...: runs CMD with stdin, stdout and stderr on a pseudo-terminal; what the terminal
# showed goes to stdout (carriage returns and escapes kept).
on_tty() {
  local cmd
  printf -v cmd '%q ' "$@"
  timeout 60 script -q -e -c "$cmd" /dev/null </dev/null
}
# counters FILE VERB: the "[i/total] VERB name" counters FILE shows, one a line, in order.
counters() {
  tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g' | grep -E "^\[[0-9]+/[0-9]+\] $2 " || true
}

on_tty "${nc[@]}" up "$scratch/farm.yaml" >"$scratch/up.tty" || fail "up under a terminal failed"
expected=$(for i in $(seq 1 $n); do echo "[$i/$n] creating web-$i"; done)
[ "$(counters "$scratch/up.tty" creating)" = "$expected" ] ||
  fail "up showed no counter from [1/$n] to [$n/$n]: $(counters "$scratch/up.tty" creating | head -3)"
grep -q $'\r\x1b\[K' "$scratch/up.tty" || fail "up did not erase its counter"
grep -q "topology farm is up: $n changes" "$scratch/up.tty" || fail "up's summary is missing"
[ "$("${nc[@]}" list --json | jq length)" = $n ] || fail "up did not make $n namespaces"

on_tty "${nc[@]}" down "$scratch/farm.yaml" >"$scratch/down.tty" || fail "down under a terminal failed"
expected=$(for i in $(seq $n -1 1); do echo "[$((n - i + 1))/$n] removing web-$i"; done)
[ "$(counters "$scratch/down.tty" removing)" = "$expected" ] ||
  fail "down showed no counter from [1/$n] to [$n/$n]: $(counters "$scratch/down.tty" removing | head -3)"

for i in $(seq 1 5); do "${nc[@]}" create "d$i" >/dev/null; done
on_tty "${nc[@]}" destroy d1 d2 d3 d4 d5 >"$scratch/destroy.tty" || fail "destroy under a terminal failed"
expected=$(for i in $(seq 1 5); do echo "[$i/5] destroying d$i"; done)
[ "$(counters "$scratch/destroy.tty" destroying)" = "$expected" ] ||
  fail "destroy showed no counter: $(cat -v "$scratch/destroy.tty")"

# --quiet on a terminal: no counter (and up says nothing at all).
on_tty "${nc[@]}" --quiet up "$scratch/farm.yaml" >"$scratch/quiet-up.tty" || fail "up --quiet failed"
[ ! -s "$scratch/quiet-up.tty" ] || fail "up --quiet printed: $(cat -v "$scratch/quiet-up.tty")"
on_tty "${nc[@]}" -q down "$scratch/farm.yaml" >"$scratch/quiet-down.tty" || fail "down -q failed"
[ ! -s "$scratch/quiet-down.tty" ] || fail "down -q printed: $(cat -v "$scratch/quiet-down.tty")"
for i in $(seq 1 3); do "${nc[@]}" create "q$i" >/dev/null; done
on_tty "${nc[@]}" --quiet destroy q1 q2 q3 >"$scratch/quiet-destroy.tty" || fail "destroy --quiet failed"
[ ! -s "$scratch/quiet-destroy.tty" ] || fail "destroy --quiet printed: $(cat -v "$scratch/quiet-destroy.tty")"

# Not a terminal: stderr stays empty, stdout is the plain report.
"${nc[@]}" up "$scratch/farm.yaml" >"$scratch/up.out" 2>"$scratch/up.err"
[ ! -s "$scratch/up.err" ] || fail "up without a terminal wrote to stderr: $(cat -v "$scratch/up.err")"
! grep -q $'\r' "$scratch/up.out" || fail "up without a terminal wrote a carriage return"
[ "$(grep -c '^create   namespace web-' "$scratch/up.out")" = $n ] || fail "up's report: $(head -3 "$scratch/up.out")"
"${nc[@]}" down "$scratch/farm.yaml" >/dev/null 2>"$scratch/down.err"
[ ! -s "$scratch/down.err" ] || fail "down without a terminal wrote to stderr: $(cat -v "$scratch/down.err")"
for i in $(seq 1 3); do "${nc[@]}" create "p$i" >/dev/null; done
out=$("${nc[@]}" destroy p1 p2 p3 2>&1)
[ -z "$out" ] || fail "destroy without a terminal printed: $(cat -v <<<"$out")"
# stdout a terminal but stderr not (a pipe): still nothing on stderr.
on_tty bash -c '"$@" 2>"'"$scratch"'/piped.err"' _ "${nc[@]}" up "$scratch/farm.yaml" >/dev/null
[ ! -s "$scratch/piped.err" ] || fail "up with stderr not a terminal: $(cat -v "$scratch/piped.err")"
"${nc[@]}" down "$scratch/farm.yaml" >/dev/null

# An error in the middle starts on a clean line: the counter is erased before it.
"${nc[@]}" create e1 >/dev/null
"${nc[@]}" create e3 >/dev/null
on_tty "${nc[@]}" destroy e1 e2 e3 >"$scratch/error.tty" && fail "destroy of a missing namespace succeeded"
grep -q $'\r\x1b\[Knetcell: ' "$scratch/error.tty" ||
  fail "the error is not on a clean line: $(cat -v "$scratch/error.tty")"
[ "$("${nc[@]}" list --json | jq length)" = 0 ] || fail "destroy e1 e2 e3 left namespaces"

[ "$failures" -eq 0 ] || { echo "$failures problem(s) in the progress output" >&2; exit 1; }
echo "progress: counters on a terminal for up, down and destroy; nothing with --quiet or without a terminal"

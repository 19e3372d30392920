#!/usr/bin/env bash
# cmake/revision.cmake, which every build runs to stamp the CLI with its source revision: on a
# scratch git repository it names the commit, follows a new commit, marks uncommitted changes,
# leaves the generated file alone (same mtime, so nothing recompiles) when nothing changed, says
# "unknown" outside git (a tarball, also one unpacked inside another repository) and takes the
# packager's -DREVISION. Needs no privileges.
#   tests/revision_test.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d /tmp/netcell-revision-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
out=$scratch/version.cc
fail() { echo "FAIL: $*" >&2; exit 1; }

stamp() {  # stamp SOURCE_DIR [REVISION]: the revision the script writes
  cmake -DSOURCE_DIR="$1" -DOUTPUT="$out" -DVERSION=9.8.7 -DREVISION="${2:-}" \
    -P "$src/cmake/revision.cmake"
  grep -q 'kVersion\[\] = "9.8.7";' "$out" || fail "no version in $(cat "$out")"
  sed -n 's/^const char kRevision\[\] = "\(.*\)";$/\1/p' "$out"
}

repo=$scratch/repo
git init -q "$repo"
git -C "$repo" -c user.name=t -c user.email=t@example.invalid commit -q --allow-empty -m one
first=$(git -C "$repo" rev-parse --short=12 HEAD)
[ "$(stamp "$repo")" = "$first" ] || fail "first commit: got $(stamp "$repo"), want $first"

before=$(stat -c %Y.%y "$out")
sleep 1.1
stamp "$repo" >/dev/null
[ "$(stat -c %Y.%y "$out")" = "$before" ] || fail "unchanged revision rewrote the file"

git -C "$repo" -c user.name=t -c user.email=t@example.invalid commit -q --allow-empty -m two
second=$(git -C "$repo" rev-parse --short=12 HEAD)
[ "$second" != "$first" ] || fail "scratch commits have one hash"
[ "$(stamp "$repo")" = "$second" ] || fail "new commit: got $(stamp "$repo"), want $second"

echo hello > "$repo/file"
git -C "$repo" add file
[ "$(stamp "$repo")" = "$second-dirty" ] || fail "uncommitted change: got $(stamp "$repo")"

git -C "$repo" -c user.name=t -c user.email=t@example.invalid commit -q -m three
git -C "$repo" tag v9.8.7
[ "$(stamp "$repo")" = "v9.8.7" ] || fail "tagged commit: got $(stamp "$repo")"

mkdir "$repo/tarball"
[ "$(stamp "$repo/tarball")" = "unknown" ] ||
  fail "tarball inside a repository: got $(stamp "$repo/tarball")"
mkdir "$scratch/plain"
[ "$(stamp "$scratch/plain")" = "unknown" ] || fail "outside git: got $(stamp "$scratch/plain")"
[ "$(stamp "$scratch/plain" 0.1.0-1)" = "0.1.0-1" ] || fail "-DREVISION not taken"
[ "$(stamp "$scratch/plain" 'a"b\c')" = "a_b_c" ] || fail "-DREVISION not sanitized"
echo "revision.cmake: commit, new commit, dirty, tag, unchanged, tarball and -DREVISION all right"

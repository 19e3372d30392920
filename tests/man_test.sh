#!/usr/bin/env bash
# The man pages cannot drift from the binary: every command and every option that `netcell --help`
# and each command's `--help` show must be documented in man/netcell.8.scd, in that command's own
# section ("## create", "## network create"; the global options under "# GLOBAL OPTIONS"), or in a
# section it points to (*CREATE OPTIONS*), on a line of its own that starts with the option and
# heads its description; and every option the page defines there must exist.
# Then the pages built by scdoc must render with man(1) without a warning, and their NAME lines
# must be readable by lexgrog (what mandb and whatis use). Needs no privileges.
# With NETCELL_SERVICE, the same for netcell-service --help and man/netcell-service.8.scd.
#   tests/man_test.sh NETCELL MAN_SOURCE_DIR MAN_BUILD_DIR [NETCELL_SERVICE]
# Exits 77 (skipped) after the source checks when the pages were not built (no scdoc).
set -euo pipefail
export NETCELL=$1
src=$2
built=$3
service=${4:-}
# shellcheck source=support/help.sh
. "$(dirname "$0")/support/help.sh"
page=$src/netcell.8.scd
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The lines of the page's section headed exactly "$1" (a "# " or "## " heading) up to the next
# heading of any level.
section() {
  awk -v h="$1" '
    /^#/ { on = ($0 == h) ; next }
    on' "$page"
}

# The options defined by the lines on standard input: every *-x* and *--xy* on a line that
# starts with one (the line that heads the option's description), but the command's own "--".
defined_options() {
  grep '^\*-' | grep -o '\*-[^*]*\*' | tr -d '*' | grep -vx -- -- || true
}

# A command's section plus the sections it points to: a *NAME* in it that heads a "# " section.
documented() {
  local text ref
  text=$(section "$1")
  printf '%s\n' "$text"
  for ref in $(printf '%s\n' "$text" | grep -o '\*[A-Z][A-Z ]*[A-Z]\*' | tr ' ' '_' | sort -u); do
    ref=${ref//\*/}
    ref=${ref//_/ }
    grep -qx "# $ref" "$page" && section "# $ref"
  done
  return 0
}

check() {  # check HEADING CMD...: the options of `netcell CMD... --help` against HEADING's text
  local heading=$1 text opt defined
  shift
  text=$(documented "$heading")
  [ -n "$text" ] || { fail "netcell.8.scd has no section '$heading' (netcell $*)"; return; }
  for opt in $(help_options "$@"); do
    # -h/--help is every command's; the page says so once, under GLOBAL OPTIONS.
    if [ $# -gt 0 ] && { [ "$opt" = -h ] || [ "$opt" = --help ]; }; then continue; fi
    grep '^\*-' <<<"$text" | grep -qF -- "*$opt*" ||
      fail "netcell${*:+ $*} --help shows $opt, but '$heading' in man/netcell.8.scd does not document it (*$opt*)"
  done
  # Options the section itself defines (a line that starts with one) must exist.
  for defined in $(section "$heading" | defined_options); do
    help_options "$@" | grep -qxF -- "$defined" ||
      fail "'$heading' in man/netcell.8.scd documents $defined, which netcell${*:+ $*} --help does not show"
  done
}

check "# GLOBAL OPTIONS"
while read -r path; do
  # shellcheck disable=SC2086
  check "## $path" $path
done < <(help_paths)
# The create options' own section must not document options create does not have.
for defined in $(section "# CREATE OPTIONS" | defined_options); do
  help_options create | grep -qxF -- "$defined" ||
    fail "CREATE OPTIONS documents $defined, which netcell create --help does not show"
done
[ "$failures" -eq 0 ] || { echo "$failures problem(s) in man/netcell.8.scd" >&2; exit 1; }
echo "man/netcell.8.scd documents every command and option --help shows"

if [ -n "$service" ]; then
  service_page=$src/netcell-service.8.scd
  shown=$("$service" --help | grep -oE '^ +--[a-z-]+' | tr -d ' ' | sort -u)
  paged=$(grep -oE '^\*--[a-z-]+\*' "$service_page" | tr -d '*' | sort -u)
  [ -n "$shown" ] || fail "netcell-service --help shows no option"
  [ "$shown" = "$paged" ] || fail "netcell-service --help and man/netcell-service.8.scd differ:
$(diff <(echo "$shown") <(echo "$paged") || true)"
  echo "man/netcell-service.8.scd documents every option netcell-service --help shows"
fi

shopt -s nullglob
pages=("$built"/*.[0-9])
if [ ${#pages[@]} -eq 0 ]; then
  echo "SKIP: no pages built in $built (scdoc not installed)"
  exit 77
fi
for p in "${pages[@]}"; do
  out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l "$p" 2>"$built/warnings") ||
    fail "man -l $p failed"
  if [ -s "$built/warnings" ]; then
    fail "man -l $p warns: $(cat "$built/warnings")"
  fi
  grep -q '^NAME' <<<"$out" || fail "man -l $p renders no NAME section"
  name=$(basename "$p")
  lexgrog "$p" | grep -q "^$p: \"${name%.*} - " || fail "lexgrog cannot read $p's NAME line"
done
rm -f "$built/warnings"
[ "$failures" -eq 0 ] || exit 1
echo "${#pages[@]} man page(s) render without warnings"

#!/usr/bin/env bash
# Drives the bash completion for real: sources completion/netcell.bash in a clean bash, finds the
# function with `complete -p netcell`, sets COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT, calls it
# and checks COMPREPLY: commands, options, option values, namespace and network names from the
# run dir the command line names (simulation backend, a scratch run dir), files for up, the
# command after run's --, and, for every command --help lists, exactly the options it shows.
# Then, where they are installed, fish's own completion engine (`complete -C`) on netcell.fish,
# and `zsh -n` plus every option --help shows on _netcell. Needs no privileges.
#   tests/completion_test.sh NETCELL COMPLETION_DIR
set -euo pipefail
bin=$(realpath "$1")
dir=$(realpath "$2")
here=$(dirname "$0")
scratch=$(mktemp -d /tmp/netcell-completion-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# The completion runs "netcell" as typed on the command line: this build's.
export PATH=$(dirname "$bin"):$PATH
export NETCELL=$bin
# shellcheck source=support/help.sh
. "$here/support/help.sh"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

run=$scratch/run
sim=(--backend simulation --run-dir "$run")
netcell "${sim[@]}" create alpha >/dev/null
netcell "${sim[@]}" create beta --mode private >/dev/null
netcell "${sim[@]}" network create lan --subnet 10.77.0.0/24 >/dev/null
mkdir "$scratch/topologies"
touch "$scratch/topologies/lab.yaml" "$scratch/topologies/lan.yaml"

# bash_complete WORD...: COMPREPLY, sorted and unique, for a command line whose words are WORD...
# (the last one is the word being completed; "" for a new one), one a line. A WORD with "=" is
# split at it, as bash does.
bash_complete() {
  bash --norc --noprofile -c '
    set -u
    . "$1"
    spec=$(complete -p netcell) || { echo "no completion for netcell" >&2; exit 1; }
    function=$(sed -n "s/.*-F \([^ ]*\) .*/\1/p" <<<"$spec")
    shift
    # As readline does with COMP_WORDBREAKS: "--mode=pr" is the words "--mode" "=" "pr".
    COMP_WORDS=()
    for word in "$@"; do
      while [[ $word == *=* ]]; do
        [ -n "${word%%=*}" ] && COMP_WORDS+=("${word%%=*}")
        COMP_WORDS+=("=")
        word=${word#*=}
      done
      [ -n "$word" ] || [ "${COMP_WORDS[*]: -1}" != "=" ] && COMP_WORDS+=("$word")
    done
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    "$function" netcell "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]:-}"
    printf "%s\n" "${COMPREPLY[@]}" | sort -u | sed "/^$/d"' \
    bash "$dir/netcell.bash" "$@"
}

expect() {  # expect "WANT (one a line)" WORD...: bash_complete WORD... gives exactly WANT
  local want=$1 got
  shift
  want=$(printf '%s\n' "$want" | sort -u | sed '/^$/d')
  got=$(bash_complete "$@")
  [ "$got" = "$want" ] || fail "completing '$*': got [$(echo $got)], want [$(echo $want)]"
}

expect_has() {  # expect_has WANT WORD...: WANT is one of the suggestions
  local want=$1
  shift
  bash_complete "$@" | grep -qxF -- "$want" || fail "completing '$*' does not offer $want"
}

lines() { printf '%s\n' "$@"; }

# Commands and options.
expect "$(help_commands)" netcell ""
expect "--mode" netcell create --mo
expect "$(lines full private shared bridged)" netcell create web --mode ""
expect "private" netcell create web --mode=pr
expect "$(lines full private shared bridged)" netcell create web --mode=
expect "$(lines auto linux rootless simulation)" netcell --backend ""
expect "$(help_commands network)" netcell network ""
expect "$(help_options | grep '^--')" netcell --
expect "--json" netcell "${sim[@]}" info alpha --js

# Names from the run dir given earlier on the command line.
expect "$(lines alpha beta)" netcell "${sim[@]}" destroy ""
expect "beta" netcell "${sim[@]}" destroy alpha ""
expect "alpha" netcell "${sim[@]}" info al
expect "" netcell "${sim[@]}" info alpha ""
expect "$(lines alpha beta)" netcell "${sim[@]}" exec ""
expect "$(lines alpha beta)" netcell --backend=simulation --run-dir="$run" stats ""
expect "" netcell --backend simulation --run-dir "$scratch/empty" destroy ""
expect "lan" netcell "${sim[@]}" create web --network ""
expect "lan" netcell "${sim[@]}" network rm ""

# Files for up and down, directories for --run-dir, the command after run's --.
expect "$(lines "$scratch/topologies/lab.yaml" "$scratch/topologies/lan.yaml")" \
  netcell up "$scratch/topologies/la"
expect "$scratch/topologies/lab.yaml" netcell down "$scratch/topologies/lab"
expect "$scratch/topologies" netcell --run-dir "$scratch/top"
expect_has echo netcell run --mode private -- ech
expect_has "$scratch/topologies/lab.yaml" netcell exec alpha -- cat "$scratch/topologies/lab"

# Every command's options, exactly as its --help shows them.
while read -r path; do
  # shellcheck disable=SC2086
  expect "$(help_options $path | grep '^--')" netcell $path --
done < <(help_paths)
[ "$failures" -eq 0 ] || { echo "$failures problem(s) in completion/netcell.bash" >&2; exit 1; }
echo "bash completion: commands, options, values, names from the run dir and files all right"

if command -v fish >/dev/null; then
  fish_complete() {  # the words fish offers for the command line $1
    fish --no-config -c "source '$dir/netcell.fish'; complete -C '$1'" | cut -f1 | sort -u
  }
  fish -n "$dir/netcell.fish" || fail "fish -n completion/netcell.fish"
  [ "$(fish_complete 'netcell ')" = "$(help_commands | sort -u)" ] ||
    fail "fish: commands: $(echo $(fish_complete 'netcell '))"
  [ "$(fish_complete "netcell --backend simulation --run-dir $run destroy ")" = \
    "$(lines alpha beta)" ] || fail "fish: namespaces from the run dir"
  [ "$(fish_complete "netcell --backend simulation --run-dir $run network rm ")" = lan ] ||
    fail "fish: networks from the run dir"
  [ "$(fish_complete 'netcell create web --mode ')" = "$(lines bridged full private shared)" ] ||
    fail "fish: modes"
  while read -r path; do
    # shellcheck disable=SC2086
    want=$(help_options $path | grep '^--' | sort -u)
    got=$(fish_complete "netcell $path --")
    [ "$got" = "$want" ] || fail "fish: netcell $path --: got [$(echo $got)], want [$(echo $want)]"
  done < <(help_paths)
  [ "$failures" -eq 0 ] || { echo "$failures problem(s) in completion/netcell.fish" >&2; exit 1; }
  echo "fish completion: commands, options, values and names from the run dir all right"
else
  echo "fish not installed: completion/netcell.fish not checked"
fi

if command -v zsh >/dev/null; then
  zsh -n "$dir/_netcell" || fail "zsh -n completion/_netcell"
  while read -r option; do
    grep -qE -- "(^|[^a-z-])$option([^a-z-]|$)" "$dir/_netcell" ||
      fail "zsh: completion/_netcell does not name $option"
  done < <({ help_options; while read -r path; do help_options $path; done < <(help_paths); } |
    grep '^--' | sort -u)
  [ "$failures" -eq 0 ] || { echo "$failures problem(s) in completion/_netcell" >&2; exit 1; }
  echo "zsh completion: syntax and every option --help shows"
else
  echo "zsh not installed: completion/_netcell not checked"
fi

# bash completion for netcell(8): commands, each command's options, option values (modes,
# backends, networks, directories, pids), namespace and network names read from the run dir that
# the command line names (netcell [--backend B] [--run-dir D] list --json), topology files for
# up/down, and the command after the -- of run and exec. Installed to
# share/bash-completion/completions/netcell; works without the bash-completion package too.
# When netcell gains an option, add it here (tests/completion_test.sh says which are missing).

_netcell_global_options="-h --help --version --backend --run-dir --netns-dir --private-subnet
  --private-subnet6 -v --verbose -q --quiet"
_netcell_create_options="--mode --network --ip --gateway --mtu --dns --publish --rate
  --egress-rate --ingress-rate --egress --allow --deny --allow-domain --deny-domain --policy
  --refuse-dns --dns-min-ttl --dns-grace --owner --no-ipv6 --profile"

# The options of command $1 (e.g. "create", "network create").
_netcell_options() {
  local options
  case $1 in
    create) options="$_netcell_create_options --netns-of --json" ;;
    run) options="--name $_netcell_create_options --pid-ns --init" ;;
    exec) options="--pid-ns --init" ;;
    list | info | stats | find-pid | gc | doctor | "network list") options="--json" ;;
    destroy) options="--kill" ;;
    "network create") options="--subnet --subnet6 --nat --host-access --json" ;;
    "policy show" | "policy clear") options="--json" ;;
    "policy set") options="--egress --allow --deny --allow-domain --deny-domain --policy --refuse-dns
      --dns-min-ttl --dns-grace --json" ;;
    "profile list") options="--json" ;;
    log) options="-f --follow -n --lines --json" ;;
    up | down) options="--dry-run --json" ;;
    metrics) options="--textfile" ;;
    network | "network rm" | policy | profile) options="" ;;
    "") options=$_netcell_global_options ;;
  esac
  [ -n "$1" ] && options="-h --help $options"
  echo "$options"
}

# Namespace names ($1 = ns) or bridged network names ($1 = net), asked of the netcell on the
# command line with the global options given there (_netcell_query). A top-level object's keys
# are indented by 4 in netcell's JSON; names need no escaping.
_netcell_names() {
  local what=$1 json
  if [ "$what" = ns ]; then
    json=$("${_netcell_query[@]}" list --json 2>/dev/null) || return 0
  else
    json=$("${_netcell_query[@]}" network list --json 2>/dev/null) || return 0
  fi
  awk -v what="$what" '
    /^  [{]/ { kind = "" }
    /^    "kind": / { kind = $2 }
    /^    "name": / {
      name = $2; gsub(/[",]/, "", name)
      if (what == "ns" || kind ~ /bridged/) print name
    }' <<<"$json"
}

# The names on standard input that the command line does not name yet (destroy a b ...).
_netcell_unnamed() {
  local name word named
  while read -r name; do
    named=0
    for word in "${COMP_WORDS[@]:0:COMP_CWORD}"; do
      [ "$word" = "$name" ] && named=1
    done
    ((named)) || echo "$name"
  done
}

# Sets COMPREPLY to the words of $1 that start with $2.
_netcell_reply() {
  local IFS=$' \t\n'
  # shellcheck disable=SC2207
  COMPREPLY=($(compgen -W "$1" -- "$2"))
}

_netcell_files() {  # $1: -f (files and directories) or -d (directories)
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen "$1" -- "$2")
}

_netcell_pids() {
  local pids=(/proc/[0-9]*)
  _netcell_reply "${pids[*]#/proc/}" "$1"
}

_netcell() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # bash splits "--mode=private" into "--mode" "=" "private".
  if [ "$cur" = "=" ]; then
    cur=""
  elif [ "$prev" = "=" ] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
  COMPREPLY=()

  # The command (and network's subcommand), the positionals after it, the global options that
  # choose the run dir, and where a run/exec command starts.
  local i word cmd="" positionals=0 dashdash=0 value
  local program=${COMP_WORDS[0]}
  [[ $program == "~/"* ]] && program=$HOME/${program#"~/"}
  local -a _netcell_query=("$program")
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if ((dashdash)); then
      continue
    fi
    case $word in
      --backend | --run-dir | --netns-dir | --private-subnet | --private-subnet6)
        value=${COMP_WORDS[i + 1]:-}
        if [ "$value" = "=" ]; then
          ((i++))
          value=${COMP_WORDS[i + 1]:-}
        fi
        ((i++))
        if [ -z "$cmd" ] && ((i < COMP_CWORD)); then
          [[ $value == "~/"* ]] && value=$HOME/${value#"~/"}
          _netcell_query+=("$word" "$value")
        fi
        continue
        ;;
      --)
        if [ "$cmd" = run ] || [ "$cmd" = exec ]; then dashdash=$i; fi
        continue
        ;;
      -*) continue ;;
      =) ((i++)); continue ;;  # "--opt = value": the value
    esac
    # An option's value is not a positional.
    case ${COMP_WORDS[i - 1]} in
      --mode | --network | --ip | --gateway | --mtu | --dns | --publish | --rate | \
        --egress-rate | --ingress-rate | --egress | --allow | --deny | --owner | --netns-of | \
        --allow-domain | --deny-domain | --policy | --refuse-dns | --dns-min-ttl | --dns-grace | \
        --name | --subnet | --textfile | --profile | -n | --lines)
        continue
        ;;
    esac
    if [ -z "$cmd" ]; then
      cmd=$word
    elif [ "$cmd" = network ] || [ "$cmd" = policy ] || [ "$cmd" = profile ]; then
      cmd="$cmd $word"
    else
      ((positionals++))
    fi
  done

  # The command of run/exec: a program, then its arguments (files).
  if ((dashdash)); then
    if ((COMP_CWORD == dashdash + 1)); then
      mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
    else
      _netcell_files -f "$cur"
    fi
    return 0
  fi

  case $prev in
    --mode) _netcell_reply "full private shared bridged" "$cur"; return 0 ;;
    --egress) _netcell_reply "allow deny" "$cur"; return 0 ;;
    --profile) _netcell_reply "untrusted egress-allowlist service" "$cur"; return 0 ;;
    --backend) _netcell_reply "auto linux rootless simulation" "$cur"; return 0 ;;
    --network) _netcell_reply "$(_netcell_names net)" "$cur"; return 0 ;;
    --run-dir | --netns-dir | --textfile) _netcell_files -d "$cur"; return 0 ;;
    --policy) _netcell_files -f "$cur"; return 0 ;;
    --refuse-dns) _netcell_reply "refused nxdomain" "$cur"; return 0 ;;
    --owner | --netns-of) _netcell_pids "$cur"; return 0 ;;
    --ip | --gateway | --mtu | --dns | --publish | --rate | --egress-rate | --ingress-rate | \
      --allow | --deny | --allow-domain | --deny-domain | --dns-min-ttl | --dns-grace | \
      --name | --subnet | --private-subnet | --private-subnet6 | -n | --lines)
      return 0
      ;;
  esac

  if [[ $cur == -* ]]; then
    _netcell_reply "$(_netcell_options "$cmd")" "$cur"
    return 0
  fi
  case $cmd in
    "") _netcell_reply "create run exec list info stats find-pid destroy gc network policy
      profile log up down doctor metrics" "$cur" ;;
    network) _netcell_reply "create list rm" "$cur" ;;
    policy) _netcell_reply "show set clear" "$cur" ;;
    profile) _netcell_reply "list" "$cur" ;;
    "policy show" | "policy set" | "policy clear")
      ((positionals == 0)) && _netcell_reply "$(_netcell_names ns)" "$cur" ;;
    info | stats | exec | log) ((positionals == 0)) && _netcell_reply "$(_netcell_names ns)" "$cur" ;;
    destroy) _netcell_reply "$(_netcell_names ns | _netcell_unnamed)" "$cur" ;;
    "network rm") _netcell_reply "$(_netcell_names net | _netcell_unnamed)" "$cur" ;;
    find-pid) ((positionals == 0)) && _netcell_pids "$cur" ;;
    up | down) ((positionals == 0)) && _netcell_files -f "$cur" ;;
  esac
  return 0
}

complete -F _netcell netcell

# Reads netcell's own `--help` (CLI11's format), for tests that check documentation and
# completion against what the binary really accepts. Source it; NETCELL must name the binary.
#   help_commands [CMD...]   the subcommands `netcell CMD... --help` lists, one a line
#   help_options [CMD...]    the options it lists (-v and --verbose each), one a line
#   help_paths               every command path ("create", "network create", ...), one a line

# Lines of the help section named $1 ("Options", "Subcommands") that start an entry.
_help_section() {
  local section=$1
  shift
  "$NETCELL" "$@" --help | awk -v s="$section:" '
    $0 == s { on = 1; next }
    /^[^ ]/ { on = 0 }
    on && /^  [^ ]/ { print $1 }'
}

help_commands() { _help_section Subcommands "$@"; }

help_options() { _help_section Options "$@" | tr ',' '\n' | grep '^-'; }

help_paths() {
  local cmd sub
  for cmd in $(help_commands); do
    echo "$cmd"
    for sub in $(help_commands "$cmd"); do echo "$cmd $sub"; done
  done
}

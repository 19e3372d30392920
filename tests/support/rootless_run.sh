#!/usr/bin/env bash
# Runs CMD... as a throwaway unprivileged user that rootless mode works for (rootless_user.sh:
# the user, its subuid range, /dev/net/tun), inside a world, as root:
#   tests/support/world.sh tests/support/rootless_run.sh UID CMD...
# CMD gets NETCELL_TEST_WORLD=1 and, when set, NETCELL_SERVICE; nothing else of this environment.
# The conformance suite's rootless cases run this way (tests/CMakeLists.txt).
set -euo pipefail
[ "${NETCELL_TEST_WORLD:-}" = 1 ] || { echo "rootless_run.sh: run me through world.sh" >&2; exit 70; }
command -v slirp4netns >/dev/null || { echo "slirp4netns not installed: skipped"; exit 77; }
source "$(dirname "$0")/rootless_user.sh"
rootless_user_setup "$1"
shift
give_tun
cd /run/ncrootless
as_user env NETCELL_TEST_WORLD=1 ${NETCELL_SERVICE:+NETCELL_SERVICE="$NETCELL_SERVICE"} "$@"

#!/usr/bin/env bash
# Runs a command inside a throwaway "world": a fresh network + mount namespace with a tmpfs on /run
# (so /run/netns and /run/netcell are empty and private to it). Nothing the command does to the
# network or to /run reaches the real host, and a crash leaves nothing behind.
#   tests/support/world.sh CMD [ARG...]
set -euo pipefail
if [ "${NETCELL_WORLD_INNER:-}" != "$$" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "world.sh: privileged tests need root (they run inside their own network namespace)" >&2
    exit 77
  fi
  export NETCELL_OUTER_NET NETCELL_OUTER_MNT
  NETCELL_OUTER_NET=$(readlink /proc/self/ns/net)
  NETCELL_OUTER_MNT=$(readlink /proc/self/ns/mnt)
  exec unshare --net --mount --propagation private -- \
    bash -c 'NETCELL_WORLD_INNER=$$ exec bash "$0" "$@"' "$0" "$@"
fi
# Inside: refuse to go on unless both namespaces differ from the ones we started in.
here_net=$(readlink /proc/self/ns/net)
here_mnt=$(readlink /proc/self/ns/mnt)
if [ -z "${NETCELL_OUTER_NET:-}" ] || [ "$here_net" = "$NETCELL_OUTER_NET" ] ||
   [ -z "${NETCELL_OUTER_MNT:-}" ] || [ "$here_mnt" = "$NETCELL_OUTER_MNT" ]; then
  echo "world.sh: not inside a fresh network and mount namespace; refusing" >&2
  exit 70
fi
mount -t tmpfs -o mode=0755 netcell-world /run
mkdir -p /run/netns /run/netcell
# Per-namespace /etc files (resolv.conf) go to /etc/netns, where `ip netns exec` reads them: give
# the world its own. The empty directory itself is the only trace on the host's file system.
mkdir -p /etc/netns
mount -t tmpfs -o mode=0755 netcell-world-etc /etc/netns
ip link set lo up
export NETCELL_TEST_WORLD=1
unset NETCELL_WORLD_INNER NETCELL_OUTER_NET NETCELL_OUTER_MNT
# netcell's host service (netcell-service) stops with the last namespace that needs it; one a
# command left behind would keep this world's namespaces alive after it. It is ended with the
# world: the one each run dir's record names, if it is a netcell-service of this world.
end_services() {
  local record pid
  for record in /run/service.json /run/*/service.json; do
    [ -f "$record" ] || continue
    pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$record")
    [ -n "$pid" ] || continue
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in *netcell-service*) ;; *) continue ;; esac
    [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$here_mnt" ] || continue
    kill "$pid" 2>/dev/null || true
  done
}
trap end_services EXIT
"$@"

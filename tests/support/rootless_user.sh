# A throwaway unprivileged user for rootless tests, made inside a world (tests/support/world.sh)
# by root: sourced by tests/rootless_test.sh and tests/support/rootless_run.sh.
#   rootless_user_setup UID   the user "ncrootless" with UID, its subuid/subgid range and
#                             $XDG (/run/user/UID), in the world's mount namespace only
#                             (bind-mounted copies of /etc/passwd, group, subuid, subgid)
#   give_tun                  the world's own 0666 /dev/net/tun, on a tmpfs /dev/net
#   as_user CMD...            CMD as that user: no capabilities, a clean environment
rootless_user_setup() {
  U=$1
  XDG=/run/user/$U
  local etc f
  etc=$(mktemp -d /run/rootless-etc.XXXXXX)
  for f in passwd group subuid subgid; do
    if [ -f /etc/$f ]; then cp /etc/$f "$etc/$f"; else : >"$etc/$f"; touch /etc/$f; fi
  done
  echo "ncrootless:x:$U:$U::/run/ncrootless:/bin/bash" >>"$etc/passwd"
  echo "ncrootless:x:$U:" >>"$etc/group"
  echo "ncrootless:300000:65536" >>"$etc/subuid"
  echo "ncrootless:300000:65536" >>"$etc/subgid"
  for f in passwd group subuid subgid; do mount --bind "$etc/$f" /etc/$f; done
  mkdir -p /run/ncrootless "$XDG"
  chown "$U:$U" /run/ncrootless "$XDG"
  chmod 0700 "$XDG"
  chmod 0755 /run
}

give_tun() {
  mkdir -p /dev/net
  mount -t tmpfs -o mode=0755 netcell-test-tun /dev/net
  mknod -m 0666 /dev/net/tun c 10 200
}

as_user() {
  setpriv --reuid="$U" --regid="$U" --clear-groups --inh-caps=-all --bounding-set=-all \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/run/ncrootless XDG_RUNTIME_DIR="$XDG" "$@"
}

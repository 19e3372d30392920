# podman 4.3 with its CNI backend, offline, inside a world (tests/support/world.sh), as
# ../shared/notes/cni-clients.md describes it: its state on tmpfs mounts in the world's mount
# namespace, cgroups off, netcell's plugin beside the reference plugins, and a busybox image
# (localhost/bb) imported from a tarball. Sourced by tests/cni/podman_test.sh and
# bench/lib/podman_run.sh.
#   podman_world PLUGIN WORK DEFAULT_NETWORK   (WORK: a scratch directory under /run)
podman_world() {
  local plugin=$1 work=$2 default_network=$3
  [ -n "${NETCELL_TEST_WORLD:-}" ] || { echo "podman_world: run me inside world.sh" >&2; exit 70; }
  umount /sys/fs/cgroup/unified 2>/dev/null || true # crun refuses hybrid cgroups
  local dir
  for dir in /var/lib /var/tmp /etc/containers /etc/cni/net.d; do
    mkdir -p "$dir"
    mount -t tmpfs -o mode=0755 podman-world "$dir"
  done
  mkdir -p "$work/plugins"
  cp "$plugin" "$work/plugins/netcell"
  # The host service beside it, where the plugin looks first (a dual-stack port mapping starts it
  # for its [::1] relay), as the package installs it where the library looks.
  cp "$(dirname "$plugin")/netcell-service" "$work/plugins/netcell-service"
  cat >/etc/containers/containers.conf <<CONF
[containers]
cgroups = "disabled"
# podman asks for its defaults (1048576 open files, its own process limit) otherwise: more than
# the hard limits this test may run under.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$work/plugins", "/usr/lib/cni"]
network_config_dir = "/etc/cni/net.d"
default_network = "$default_network"
CONF
  cat >/etc/containers/storage.conf <<'CONF'
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF
  echo 'unqualified-search-registries = []' >/etc/containers/registries.conf
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' >/etc/containers/policy.json
  # The image: busybox, offline.
  mkdir -p "$work/rootfs/bin" "$work/rootfs/www" "$work/rootfs/tmp"
  cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
  local applet
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
  done
  echo hello-from-podman >"$work/rootfs/www/index.html"
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  podman import -q --change 'ENV PATH=/bin' "$work/rootfs.tar" localhost/bb >/dev/null
}

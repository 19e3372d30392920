#!/usr/bin/env bash
# The Debian package (debian/), built and used the way Debian does, without changing this machine:
#  1. debian/ agrees with the project (its version, Build-Depends and scripts/dev's packages);
#  2. scripts/build-deb builds it (dpkg-buildpackage -us -uc -b, in a copy of the tree) into
#     BUILD_DIR/package; lintian finds no error; each .deb holds what it should and depends on
#     what it loads; the host service's systemd unit is there and its maintainer scripts neither
#     enable nor start it;
#  3. two Debian 12 roots made from Debian's archive by mmdebstrap (the "clean" one of variant apt,
#     and one with the tools the checks use), each used in a private mount, network and PID
#     namespace (nothing of them reaching the machine; the downloads happen before, in the
#     machine's network namespace, which nothing changes);
#  4. in the clean root, apt installs the four packages (their dependencies resolved by apt from
#     their Depends alone), every program and library they hold finds its libraries, the
#     installed netcell runs --version, doctor, a simulation create/list/destroy and a private
#     namespace (the firewall through the dlopen'd libnftables), Debian's python3 imports the
#     binding; then apt purges them and their dependencies, and only apt's and dpkg's records
#     are left of them;
#  5. in a copy-on-write overlay of the tools root, apt installs them; there the unit passes
#     systemd-analyze verify and is not enabled, the installed netcell runs --version, a
#     simulation create/list/destroy and the demo (privileged, in a world), its man pages and
#     completion are found, a consumer builds the seed example against libnetcell-dev with
#     find_package and pkg-config and runs it, Debian's python3 imports netcell from
#     python3-netcell and runs two of the Python examples (in a world); then apt removes and
#     purges them, and the overlay's upper layer shows nothing left behind but dpkg's and apt's
#     own records.
#   tests/package_test.sh BUILD_DIR           (as root; BUILD_DIR holds tests/netcell-responder)
set -euo pipefail
fail() { echo "package: $*" >&2; exit 1; }
packages=(netcell libnetcell0 libnetcell-dev python3-netcell)

# Inside the throwaway root (chroot), from /tmp/package.
# apt installs the packages from /tmp/package/debs, their dependencies from the root's cache (the
# root has no network: they were downloaded when it was made).
#   apt_install WHERE [APT-GET OPTION...]
apt_install() {
  apt-get install -y -q "${@:2}" ./debs/*.deb >/tmp/apt-install.log 2>&1 ||
    { tail -20 /tmp/apt-install.log; fail "apt-get cannot install the packages in $1"; }
  for p in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p")" = "ii " ] || fail "$p is not installed"
  done
}

# Inside the clean root (chroot), from /tmp/package.
in_clean_root() {
  cd /tmp/package
  files_now() {
    find / -xdev -mindepth 1 \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache \
      -o -path /var/log -o -path /etc/ld.so.cache \) -prune -o -print | sort
  }
  files_now >/tmp/before
  dpkg-query -W -f='${binary:Package}\n' | sort >/tmp/packages-before
  # Without Recommends: the packages work with what they Depend on.
  apt_install "a clean Debian 12 root" --no-install-recommends
  # What apt had to bring: the dependencies, for the report.
  local brought
  brought=$(dpkg-query -W -f='${binary:Package}\n' | sort | comm -13 /tmp/packages-before - | wc -l)
  local elf missing=""
  while read -r elf; do
    [ -f "$elf" ] && [ ! -L "$elf" ] && [ "$(head -c 4 "$elf" | od -An -c | tr -d ' ')" = 177ELF ] ||
      continue
    missing+=$(ldd "$elf" 2>&1 | { grep 'not found' || true; } | sed "s|^|$elf: |")
  done < <(dpkg -L "${packages[@]}" | sort -u)
  [ -z "$missing" ] || fail "in a clean root, libraries are missing: $missing"
  netcell --version | grep -Eqx 'netcell [0-9.]+ \(revision [^ ]+\)' || fail "clean root: --version"
  netcell doctor >/tmp/doctor 2>&1 || { cat /tmp/doctor; fail "clean root: netcell doctor fails"; }
  local sim=(netcell --backend simulation --run-dir /tmp/sim)
  "${sim[@]}" create sim1 --mode private >/dev/null
  "${sim[@]}" list --json | grep -q '"sim1"' || fail "clean root: simulation list"
  "${sim[@]}" destroy sim1
  # A private namespace: veth, addresses, routes and the firewall (libnftables, which netcell
  # loads with dlopen, so only its Depends bring it) in this root's own network namespace.
  local nc=(netcell --run-dir /tmp/nc)
  "${nc[@]}" create p1 --mode private >/tmp/create 2>&1 || { cat /tmp/create; fail "clean root: create"; }
  "${nc[@]}" info p1 --json | grep -q '"enforced": *true' || fail "clean root: p1 is not enforced"
  # /proc/net is the reader's network namespace: inside p1, a default route out of eth0.
  "${nc[@]}" exec p1 -- cat /proc/net/route | grep -Eq '^eth0[[:space:]]+00000000[[:space:]]' ||
    fail "clean root: p1 has no default route out of eth0"
  "${nc[@]}" destroy p1
  /usr/bin/python3 -c 'import netcell; netcell.NamespaceManager(backend="simulation", run_dir="/tmp/pysim").list()' ||
    fail "clean root: Debian's python3 cannot use python3-netcell"
  apt-get purge -y -q "${packages[@]}" >/tmp/apt-purge.log 2>&1 ||
    { tail -20 /tmp/apt-purge.log; fail "clean root: apt-get purge failed"; }
  apt-get autoremove --purge -y -q >>/tmp/apt-purge.log 2>&1 ||
    { tail -20 /tmp/apt-purge.log; fail "clean root: apt-get autoremove --purge failed"; }
  local left
  # (/etc/netns: the directory ip-netns(8) reads, which netcell made for p1's resolv.conf)
  left=$(files_now | comm -13 /tmp/before - | grep -v -e '/__pycache__' -e '^/etc/netns$' || true)
  [ -z "$left" ] || fail "clean root: installing and purging left: $left"
  [ ! -e /run/netcell ] || fail "clean root: purge left /run/netcell"
  echo "package: apt installed the four packages and $((brought - 4)) dependencies in a clean root"
}

# Inside the tools root (chroot over an overlay), from /tmp/package.
in_root() {
  cd /tmp/package
  apt_install "a Debian 12 root"
  for p in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p")" = "ii " ] || fail "$p is not installed"
  done
  dpkg -L "${packages[@]}" | sort -u >installed
  local unit=/lib/systemd/system/netcell-service.service
  [ -f "$unit" ] || fail "$unit is not installed"
  if command -v systemd-analyze >/dev/null; then
    local verified
    verified=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $verified"
    ! grep -q netcell <<<"$verified" || fail "systemd-analyze verify $unit says: $verified"
  fi
  ! ls /etc/systemd/system/*.wants/netcell-service.service 2>/dev/null ||
    fail "installing enabled netcell-service.service"
  netcell --version | grep -Eqx 'netcell [0-9.]+ \(revision [^ ]+\)' || fail "netcell --version"
  netcell --version | grep -vq 'revision unknown' || fail "netcell --version: revision unknown"
  ldconfig -p | grep -q 'libnetcell\.so\.0 ' || fail "ldconfig does not know libnetcell.so.0"
  { man -w netcell && man -w 5 netcell-topology; } >/dev/null || fail "man pages not found"
  bash -c '. /usr/share/bash-completion/completions/netcell && complete -p netcell' >/dev/null ||
    fail "bash completion"
  if command -v systemd-tmpfiles >/dev/null; then
    [ "$(stat -c %a /run/netcell 2>/dev/null)" = 700 ] || fail "tmpfiles.d did not make /run/netcell"
  fi
  local sim=(netcell --backend simulation --run-dir /tmp/sim)
  "${sim[@]}" create sim1 --mode private >/dev/null
  "${sim[@]}" list --json | grep -q '"sim1"' || fail "simulation: list does not show sim1"
  "${sim[@]}" destroy sim1
  "${sim[@]}" list | grep -q 'no namespaces' || fail "simulation: sim1 not destroyed"
  bash src/scripts/demo.sh --bin /usr/bin/netcell --responder src/netcell-responder >demo.log 2>&1 ||
    { tail -30 demo.log; fail "the demo failed with the installed netcell"; }
  bash src/tests/support/consumer.sh /usr src/examples/seed_api.cc
  python_in_root
  apt-get remove -y -q "${packages[@]}" >/dev/null 2>&1 || fail "apt-get remove failed"
  local left
  left=$(while read -r path; do [ -d "$path" ] || [ ! -e "$path" ] || echo "$path"; done <installed)
  [ -z "$left" ] || fail "apt-get remove left: $left"
  # What apt-get remove keeps of a package (netcell's postrm) goes with the purge.
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' netcell)" = "rc " ] || fail "netcell is not in rc"
  apt-get purge -y -q netcell >/dev/null 2>&1 || fail "apt-get purge failed"
  for p in "${packages[@]}"; do
    [ -z "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | tr -d ' ')" ] ||
      fail "$p is still known to dpkg after purge"
  done
  [ ! -e /run/netcell ] || fail "purge left /run/netcell"
}

# python3-netcell: Debian's python3 imports the installed module, which runs on the simulation
# backend and, in a world, two of the tutorial's exercises (the second through the installed
# netcell-service), checked by what the processes inside report.
python_in_root() {
  local where
  where=$(/usr/bin/python3 -c 'import netcell; print(netcell.__file__)') ||
    fail "Debian's python3 cannot import netcell"
  [ "$where" = /usr/lib/python3/dist-packages/netcell/__init__.py ] ||
    fail "import netcell found $where, not the package's"
  /usr/bin/python3 - <<'PY' || fail "python3-netcell: the simulation smoke test failed"
import os, netcell
mgr = netcell.NamespaceManager(backend="simulation", run_dir="/tmp/pysim")
with mgr.namespace(netcell.NamespaceConfig.private_network(os.getpid(), name="py1")) as info:
    assert info.address is not None
    assert mgr.run("py1", ["sh", "-c", "exit 7"]).returncode == 7
assert mgr.list() == []
PY
  local out
  out=$(PYTHONDONTWRITEBYTECODE=1 bash src/tests/support/world.sh /usr/bin/python3 \
    src/python/examples/pid_namespace.py) || fail "python3-netcell: pid_namespace.py failed"
  grep -q '"pid": 1, "processes": \[1\], "devices": \["lo"\]' <<<"$out" ||
    fail "python3-netcell: pid_namespace.py saw: $out"
  out=$(PYTHONDONTWRITEBYTECODE=1 bash src/tests/support/world.sh /usr/bin/python3 \
    src/python/examples/three_namespaces.py) || fail "python3-netcell: three_namespaces.py failed"
  grep -q '"c->a": true, "c->b": false' <<<"$out" ||
    fail "python3-netcell: three_namespaces.py saw: $out"
}

# The runtime mounts of a root, and /tmp/package in it: the packages and what the checks use.
prepare_root() {
  local root=$1 out=$2 build=$3 src=$4
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --bind /dev "$root/dev"
  mount -t tmpfs -o mode=0755 netcell-package-run "$root/run"
  mount -t tmpfs -o mode=1777 netcell-package-tmp "$root/tmp"
  local pkg=$root/tmp/package
  mkdir -p "$pkg/debs" "$pkg/src/scripts" "$pkg/src/tests/support" "$pkg/src/examples" \
    "$root/tmp/home"
  for p in "${packages[@]}"; do cp "$out/${p}"_*.deb "$pkg/debs/"; done
  cp "$src/scripts/demo.sh" "$pkg/src/scripts/"
  cp "$src/tests/support/world.sh" "$src/tests/support/consumer.sh" "$pkg/src/tests/support/"
  cp "$src/examples/seed_api.cc" "$pkg/src/examples/"
  mkdir -p "$pkg/src/python"
  cp -r "$src/python/examples" "$pkg/src/python/"
  cp "$build/tests/netcell-responder" "$pkg/src/"
  cp "$0" "$pkg/package_test.sh"
}
in_chroot() {
  local root=$1
  shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/home LC_ALL=C.UTF-8 \
    bash /tmp/package/package_test.sh "$@"
  umount -l "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp"
}

# In a private mount, network and PID namespace: the clean root itself (it is thrown away).
clean() {
  local root=$1
  shift
  mount --bind "$root" "$root"  # a mount point, as a real / is (netcell exec remounts / a slave)
  prepare_root "$root" "$@"
  in_chroot "$root" --in-clean-root
}

# In a private mount, network and PID namespace: an overlay of the tools root, then what it left.
throwaway() {
  local scratch=$1 lower=$2
  shift 2
  local t=$scratch/t
  mkdir -p "$t"
  mount -t tmpfs -o mode=0755 netcell-package "$t"
  mkdir "$t/upper" "$t/work" "$t/root"
  mount -t overlay netcell-package-root -o "lowerdir=$lower,upperdir=$t/upper,workdir=$t/work" \
    "$t/root"
  local root=$t/root
  prepare_root "$root" "$@"
  in_chroot "$root" --in-root
  # What the upper layer holds beyond dpkg's, apt's, ldconfig's and man-db's records (and the
  # empty /etc/netns every world makes): files the packages left, or root files they changed or
  # removed (a whiteout); a directory the root has is only a copy made on the way to a record.
  local left
  left=$(cd "$t/upper" && find . -mindepth 1 | sed 's|^\./||' | while read -r path; do
    case "$path" in
      var/lib/dpkg/info/netcell* | var/lib/dpkg/info/libnetcell*) echo "$path" ;;
      var/lib/dpkg/* | var/lib/apt/* | var/cache/apt/* | var/log/* | etc/ld.so.cache | \
        var/cache/ldconfig/* | var/cache/man/* | var/cache/debconf/* | etc/netns) ;;
      *) [ -d "$t/upper/$path" ] && [ ! -L "$t/upper/$path" ] && [ -d "$lower/$path" ] || echo "$path" ;;
    esac
  done)
  [ -z "$left" ] || fail "installing and purging left or changed: $left"
}

# A Debian 12 root from the archive (the stable release's updates and security suites included),
# with the dependencies of the packages DEBS downloaded into its apt cache, so that apt can
# install them where there is no network. With --with-dependencies they are installed too (the
# packages installed and purged again), so that what the packages leave behind is told from what
# their dependencies bring.
#   make_root DIR DEBS [--with-dependencies] [PACKAGE...]
make_root() {
  local dir=$1 debs=$2 include deps=()
  shift 2
  if [ "${1:-}" = --with-dependencies ]; then
    shift
    deps=(--customize-hook="chroot \"\$1\" sh -c 'apt-get install -y -q /tmp/debs/*.deb &&
      apt-get purge -y -q ${packages[*]}'")
  fi
  include=$(IFS=,; echo "$*")
  mmdebstrap --quiet --variant=apt ${include:+--include="$include"} \
    --skip=cleanup/apt/cache --skip=cleanup/apt/lists \
    --customize-hook="mkdir \"\$1/tmp/debs\" && cp $debs \"\$1/tmp/debs/\"" \
    --customize-hook='chroot "$1" sh -c "apt-get install -y -q --download-only -o APT::Install-Recommends=true /tmp/debs/*.deb"' \
    "${deps[@]}" --customize-hook='rm -r "$1/tmp/debs"' \
    bookworm "$dir" >"$dir.log" 2>&1 || { tail -20 "$dir.log"; fail "mmdebstrap could not make $dir"; }
}

case "${1:-}" in
  --in-root) in_root; exit ;;
  --in-clean-root) in_clean_root; exit ;;
  --throwaway) shift; throwaway "$@"; exit ;;
  --clean) shift; clean "$@"; exit ;;
esac
[ $# = 1 ] || { echo "usage: tests/package_test.sh BUILD_DIR" >&2; exit 2; }
build=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "package: needs root (the throwaway root)" >&2; exit 77; }
for tool in dpkg-buildpackage dh lintian mmdebstrap; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/dev setup installs it)"
done
start=$SECONDS

# 1. debian/ and the project agree.
version=$(cd "$src" && dpkg-parsechangelog -S Version)
project=$(sed -nE 's/^project\(netcell VERSION ([0-9.]+) .*/\1/p' "$src/CMakeLists.txt")
[ "$version" = "$project" ] || fail "debian/changelog says $version, CMakeLists.txt $project"
# Build-Depends are scripts/dev's BUILD_PACKAGES but for g++ (build-essential has it) and what
# only the test suites and benchmarks need (the package's build makes neither).
build_depends=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$src/debian/control" | sed '$d' |
  sed 's/^Build-Depends://' | tr ',' '\n' | sed -E 's/\(.*\)//; s/[[:space:]]//g' | grep . |
  grep -vx debhelper-compat | sort)
dev_packages=$(sed -n '/^BUILD_PACKAGES=(/,/)/p' "$src/scripts/dev" |
  sed 's/^BUILD_PACKAGES=(//; s/)//' | tr ' ' '\n' | grep . | sort)
expected=$(grep -vxE 'g\+\+|libgtest-dev|libgmock-dev|libbenchmark-dev' <<<"$dev_packages")
[ "$build_depends" = "$expected" ] || fail "Build-Depends and scripts/dev's BUILD_PACKAGES differ:
$(diff <(echo "$build_depends") <(echo "$expected") || true)"

# 2. Build, lintian, contents and dependencies.
out=$build/package
"$src/scripts/build-deb" "$out" >"$build/package.log" 2>&1 ||
  { tail -40 "$build/package.log"; fail "dpkg-buildpackage failed (log: $build/package.log)"; }
echo "package: built in $((SECONDS - start)) s"
lintian --fail-on error --info "$out/netcell_${version}_"*.changes >"$build/lintian.log" 2>&1 ||
  { cat "$build/lintian.log"; fail "lintian reports errors"; }
grep -v 'running with root privileges' "$build/lintian.log" || true
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
contents() { dpkg-deb -c "$out/${1}_${version}_"*.deb | awk '{ print $6 }' | sed 's|^\./||' | grep .; }
has() {
  local package=$1 list
  list=$(contents "$package")
  shift
  for path in "$@"; do grep -qx "$path" <<<"$list" || fail "$package lacks $path"; done
}
has netcell usr/bin/netcell usr/libexec/netcell/netcell-service usr/lib/cni/netcell \
  usr/lib/tmpfiles.d/netcell.conf usr/share/man/man8/netcell-cni.8.gz \
  usr/share/man/man8/netcell.8.gz usr/share/man/man8/netcell-service.8.gz \
  usr/share/man/man5/netcell-topology.5.gz usr/share/bash-completion/completions/netcell \
  usr/share/zsh/vendor-completions/_netcell usr/share/fish/vendor_completions.d/netcell.fish \
  usr/share/doc/netcell/copyright
has libnetcell0 "usr/lib/$multiarch/libnetcell.so.0" "usr/lib/$multiarch/libnetcell.so.$version"
has libnetcell-dev usr/include/netcell/netcell.h "usr/lib/$multiarch/libnetcell.so" \
  "usr/lib/$multiarch/pkgconfig/netcell.pc" "usr/lib/$multiarch/cmake/netcell/netcellConfig.cmake"
! contents libnetcell0 | grep -vE "^(usr/lib/$multiarch/libnetcell\.so\.|usr/share/doc/libnetcell0/|.*/$)" ||
  fail "libnetcell0 holds more than the library"
! contents libnetcell-dev | grep -q '\.a$' || fail "libnetcell-dev holds a static library"
pydir=usr/lib/python3/dist-packages/netcell
has python3-netcell $pydir/__init__.py $pydir/_enums.py $pydir/_netcell.pyi $pydir/py.typed
contents python3-netcell | grep -qE "^$pydir/_netcell\.cpython-3[0-9]+-$multiarch\.so$" ||
  fail "python3-netcell lacks the extension module"
depends() { dpkg-deb -f "$out/${1}_${version}_"*.deb Depends; }
# libnftables is loaded with dlopen, which dpkg-shlibdeps cannot see.
for p in netcell libnetcell0; do depends "$p" | grep -q 'libnftables1' || fail "$p: no libnftables1"; done
depends libnetcell0 | grep -q 'libyaml-cpp' || fail "libnetcell0 does not depend on yaml-cpp"
depends libnetcell-dev | grep -qF "libnetcell0 (= $version)" || fail "libnetcell-dev: no libnetcell0"
# The binding links libnetcell.so.0 (no copy of the library) and depends on Debian's python3.
depends python3-netcell | grep -q 'libnetcell0' || fail "python3-netcell does not depend on libnetcell0"
depends python3-netcell | grep -qE '(^|, )python3( |,|$)' || fail "python3-netcell: no python3"
dpkg-deb -I "$out/libnetcell0_${version}_"*.deb symbols | grep -q '@NETCELL_0 ' ||
  fail "libnetcell0 has no symbols file"
# The host service's unit: installed by dh_installsystemd, neither enabled nor started (netcell
# starts the service on demand; docs/SERVICE.md "Under systemd").
has netcell lib/systemd/system/netcell-service.service
postinst=$(dpkg-deb -I "$out/netcell_${version}_"*.deb postinst)
grep -q "deb-systemd-helper update-state 'netcell-service.service'" <<<"$postinst" ||
  fail "netcell's postinst does not know its unit"
# Not started (no deb-systemd-invoke); not enabled is checked where it is installed, below.
! grep -Eq 'deb-systemd-invoke|systemctl (start|restart)' <<<"$postinst" ||
  fail "netcell's postinst starts its unit: $postinst"

# 3. The two roots (their downloads in this network namespace; nothing else is done in it).
scratch=$(mktemp -d /tmp/netcell-package-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
debs=$(for p in "${packages[@]}"; do echo "$out/${p}"_*.deb; done | paste -sd' ')
make_root "$scratch/clean" "$debs"
# The tools the checks of 5 use: the demo's (iproute2, nftables, ping, nc, dig, jq, dnsmasq), the consumer's
# (a C++ toolchain, CMake, Ninja, pkg-config), man, bash completion and systemd.
make_root "$scratch/tools" "$debs" --with-dependencies iproute2 nftables iputils-ping netcat-openbsd bind9-dnsutils \
  jq dnsmasq-base g++ cmake ninja-build pkg-config binutils man-db bash-completion systemd
echo "package: made a clean and a tools root in $((SECONDS - start)) s"

# 4. In the clean root.
unshare --mount --net --pid --fork --propagation private -- \
  bash "$0" --clean "$scratch/clean" "$out" "$build" "$src"

# 5. Install, use, remove and purge in an overlay of the tools root.
unshare --mount --net --pid --fork --propagation private -- \
  bash "$0" --throwaway "$scratch" "$scratch/tools" "$out" "$build" "$src"
echo "package: built, checked by lintian, installed by apt in a clean root, used, removed and" \
  "purged in $((SECONDS - start)) s"

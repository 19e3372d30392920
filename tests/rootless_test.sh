#!/usr/bin/env bash
# Rootless mode as an unprivileged user, run as root inside a world (tests/support/world.sh):
#   tests/support/world.sh tests/rootless_test.sh NETCELL [GROUP...]
# GROUP: doctor, isolation, escape, crash, publish, bridged, rate, policy, domains (default: all).
# The throwaway user (uid 4321 to 4329,
# one per group) and its subuid entry exist only in the world's mount namespace (bind-mounted
# copies of /etc/passwd, /etc/group, /etc/subuid, /etc/subgid); the world gets its own 0666
# /dev/net/tun on a tmpfs /dev/net. "The internet" is a namespace `wan` at 203.0.113.10 behind
# the world's 203.0.113.1; the world has an HTTP server (0.0.0.0:8081: its loopback and its own
# address) and a DNS responder (127.0.0.1:53) that no rootless namespace may reach. Every check
# is read back from outside, as root.
set -euo pipefail
NETCELL=$(readlink -f "$1")
SUPPORT=$(cd "$(dirname "$0")/support" && pwd)
shift
GROUPS_TO_RUN=("$@")
[ ${#GROUPS_TO_RUN[@]} -gt 0 ] || GROUPS_TO_RUN=(doctor isolation escape crash publish bridged rate policy domains)
[ "${NETCELL_TEST_WORLD:-}" = 1 ] || { echo "rootless_test.sh: run me through world.sh" >&2; exit 70; }
command -v slirp4netns >/dev/null || { echo "slirp4netns not installed: skipped"; exit 77; }

# One throwaway uid per group, so groups may run at once in different worlds (they share the
# machine's pid space, where a user's processes are counted).
case "${GROUPS_TO_RUN[0]}" in
  doctor) U=4321 ;; isolation) U=4322 ;; escape) U=4323 ;; crash) U=4324 ;; publish) U=4325 ;; bridged) U=4326 ;; rate) U=4327 ;; domains) U=4329 ;; *) U=4328 ;;
esac
RUN=/run/user/$U/netcell
checks=0
failures=0
# Per world (/run is the world's own tmpfs): groups may run at once.
OUT=$(mktemp /run/rootless-out.XXXXXX)
DOC=$(mktemp /run/rootless-doctor.XXXXXX)
pids=()
ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
check() { # check DESC CMD... : CMD succeeds
  local desc=$1; shift
  if "$@" >$OUT 2>&1; then ok "$desc"; else bad "$desc: $(head -c 400 $OUT)"; fi
}
refuse_eperm() { # refuse_eperm DESC CMD... : CMD fails for lack of permission
  local desc=$1; shift
  if "$@" >$OUT 2>&1; then bad "$desc (it succeeded: $(head -c 300 $OUT))"
  elif grep -q "Operation not permitted" $OUT; then ok "$desc (EPERM)"
  else bad "$desc: failed, but not for lack of permission: $(head -c 300 $OUT)"; fi
}
refuse() { # refuse DESC CMD... : CMD fails
  local desc=$1; shift
  if "$@" >$OUT 2>&1; then bad "$desc (it succeeded: $(head -c 300 $OUT))"; else ok "$desc"; fi
}
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # A session a failed check left: its holder and helper, by the pids it recorded.
  for p in $(holder_pid) $(helper_pid); do kill -9 "$p" 2>/dev/null || true; done
  # An iperf3 server (rate) whose client never came.
  p=$(cat /run/rootless-iperf.pid 2>/dev/null || true)
  [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = iperf3 ] && kill "$p" 2>/dev/null || true
}
trap cleanup EXIT

# ---- the world: a user, a tun device, an internet, services on the world's loopback --------
source "$(dirname "$0")/support/rootless_user.sh"
rootless_user_setup "$U"
nc_user() { as_user "$NETCELL" "$@"; }

# A namespace NAME on a veth whose world end has WORLD_ADDR/24 and its own end ITS_ADDR/24.
world_host() { # world_host NAME WORLD_ADDR ITS_ADDR
  ip link add "${1}0" type veth peer name "${1}1"
  ip netns add "$1"
  ip link set "${1}1" netns "$1"
  ip addr add "$2/24" dev "${1}0"
  ip link set "${1}0" up
  ip -n "$1" addr add "$3/24" dev "${1}1"
  ip -n "$1" link set "${1}1" up
  ip -n "$1" link set lo up
}
world_host wan 203.0.113.1 203.0.113.10

# An HTTP server that answers with the peer's address.
http_server() { # NETNS-CMD-PREFIX... ADDRESS PORT
  local port=${*: -1} addr=${*: -2:1}
  "${@:1:$#-2}" /usr/bin/python3 -c '
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("peer=%s\n" % self.client_address[0]).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()' "$addr" "$port" &
  pids+=($!)
}
http_server ip netns exec wan 0.0.0.0 8080
http_server env 0.0.0.0 8081
# A DNS responder on the world's loopback: any query gets a reply (the query, QR bit set).
/usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 53))
while True:
    q, a = s.recvfrom(512)
    if len(q) >= 12: s.sendto(q[:2] + bytes([q[2] | 0x80, q[3]]) + q[4:], a)' &
pids+=($!)
# The world's resolver is that loopback one (as with a local stub resolver on a desktop).
echo "nameserver 127.0.0.1" >/run/rootless-resolv.conf
mount --bind /run/rootless-resolv.conf /etc/resolv.conf
for _ in $(seq 50); do
  curl -s -m 1 http://127.0.0.1:8081/ >/dev/null && ip netns exec wan curl -s -m 1 \
    http://203.0.113.10:8080/ >/dev/null && break
  sleep 0.1
done

holder_pid() { sed -n 's/.*"holder":{"pid":\([0-9]*\).*/\1/p' "$RUN/rootless/session.json" 2>/dev/null; }
helper_pid() { sed -n 's/.*"helper":{"pid":\([0-9]*\).*/\1/p' "$RUN/rootless/session.json" 2>/dev/null; }
# The user's processes that are running (zombies the world's init has not reaped do not count).
user_processes() { ps -o pid=,stat=,comm= -u $U 2>/dev/null | awk '$2 !~ /^Z/' || true; }
# Nothing of the user's session is left: no process, no record, no mount seen from outside.
nothing_left() {
  local what=$1 procs
  for _ in $(seq 40); do user_processes | grep -q . || break; sleep 0.05; done
  procs=$(user_processes)
  if [ -z "$procs" ]; then ok "$what: no process of the user left"; else bad "$what: left: $procs"; fi
  if [ -z "$(ls -A "$RUN/namespaces" 2>/dev/null)" ] && [ ! -e "$RUN/rootless" ] &&
     [ ! -e "$RUN/ip_forward.saved" ] && [ -z "$(ls -A "$RUN/netns" 2>/dev/null)" ]; then
    ok "$what: no record, session or namespace file left in $RUN"
  else
    bad "$what: files left: $(find "$RUN" -mindepth 1 | tr '\n' ' ')"
  fi
  if findmnt -rn -o TARGET | grep -q "^$XDG"; then
    bad "$what: mounts left: $(findmnt -rn -o TARGET | grep "^$XDG" | tr '\n' ' ')"
  else
    ok "$what: no mount under $XDG"
  fi
}

# ---- doctor: each missing prerequisite, named ------------------------------------------------
group_doctor() {
  # This world still has the host's /dev/net/tun (root's, 0600 on this VM) or none.
  if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    if nc_user doctor >$DOC 2>&1; then bad "doctor without a usable tun: healthy"; else
      grep -q "FAIL rootless: /dev/net/tun not usable by this user" $DOC &&
        ok "doctor names /dev/net/tun not usable" || bad "doctor: $(cat $DOC)"
    fi
    if nc_user create d1 >$OUT 2>&1; then bad "create without a usable tun succeeded"; else
      [ "$(wc -l <$OUT)" = 1 ] && grep -q "/dev/net/tun" $OUT &&
        ok "create without tun: one line naming /dev/net/tun ($(cat $OUT))" ||
        bad "create without tun said: $(cat $OUT)"
    fi
    if nc_user list >$OUT 2>&1; then bad "auto chose a backend without a usable tun"; else
      grep -q "use --backend simulation for an unenforced model" $OUT &&
        ok "auto never falls back to the simulation silently" || bad "list: $(cat $OUT)"
    fi
  fi
  give_tun
  check "doctor healthy with tun, user namespaces and slirp4netns" nc_user doctor
  grep -q "backend              rootless (isolation enforced)" $OUT &&
    ok "doctor: backend rootless, enforced" || bad "doctor: $(cat $OUT)"
  mkdir -p /run/empty-path
  if as_user env PATH=/run/empty-path "$NETCELL" doctor >$DOC 2>&1; then
    bad "doctor without slirp4netns: healthy"
  else
    grep -q "FAIL rootless: slirp4netns not installed" $DOC &&
      ok "doctor names slirp4netns not installed" || bad "doctor: $(cat $DOC)"
  fi
  # user.max_user_namespaces is per user namespace: 0 in one of the world's own, not the host's.
  if unshare --user --map-root-user sh -c 'echo 0 >/proc/sys/user/max_user_namespaces &&
       exec setpriv --bounding-set=-all --inh-caps=-all env XDG_RUNTIME_DIR=/run "$0" doctor' \
       "$NETCELL" >$DOC 2>&1; then
    bad "doctor with user.max_user_namespaces=0: healthy"
  else
    grep -q "FAIL rootless: user namespaces disabled: user.max_user_namespaces is 0" $DOC &&
      ok "doctor names user.max_user_namespaces = 0" || bad "doctor: $(cat $DOC)"
  fi
  nc_user doctor --json >$OUT 2>&1 || true
  [ "$(jq -r '.checks[] | select(.check == "rootless: subuid range") | "\(.ok) \(.detail)"' \
       $OUT)" = "true present (not needed: netcell maps only the user's own uid)" ] &&
    ok "doctor: a subuid range is reported, not required" || bad "doctor --json: $(cat $OUT)"
}

# ---- modes and isolation ---------------------------------------------------------------------
group_isolation() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  check "create full" nc_user create c1 --mode full
  nc_user info c1 --json >$OUT 2>&1 || true
  [ "$(jq -r '"\(.backend) \(.enforced)"' $OUT)" = "rootless true" ] &&
    ok "info: backend rootless, enforced true" || bad "info: $(cat $OUT)"
  local holder helper
  holder=$(holder_pid)
  helper=$(helper_pid)
  [ -n "$holder" ] && [ "$(stat -c %u /proc/$holder)" = $U ] &&
    [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ] &&
    ok "holder $holder: the user's, in a network namespace of its own" || bad "holder: '$holder'"
  [ -n "$helper" ] && [ "$(cat /proc/$helper/comm)" = slirp4netns ] &&
    tr '\0' ' ' </proc/$helper/cmdline | grep -q -- "--disable-host-loopback --disable-dns" &&
    ok "helper $helper: slirp4netns with host loopback and DNS closed" || bad "helper: '$helper'"
  findmnt -rn -o TARGET | grep -q "^$XDG" && bad "a namespace mount is visible outside" ||
    ok "namespace mounts stay in the user's mount namespace"
  nc_user exec c1 -- ip -j link >$OUT 2>&1 || true
  [ "$(grep -o '"ifname":"[^"]*"' $OUT | tr '\n' ' ')" = '"ifname":"lo" ' ] &&
    ok "full: only lo inside" || bad "full: links: $(cat $OUT)"
  refuse "full: no route to the internet" nc_user exec c1 -- curl -s -m 2 http://203.0.113.10:8080/
  check "full: its own loopback works" nc_user exec c1 -- ip -j addr show lo
  nc_user exec c1 -- id -u >$OUT 2>&1 || true
  [ "$(cat $OUT)" = $U ] && ok "commands run as the user ($U)" || bad "id: $(cat $OUT)"

  check "create private" nc_user create p1 --mode private
  nc_user exec p1 -- curl -s -m 5 http://203.0.113.10:8080/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=203.0.113.1" ] &&
    ok "private: egress NAT, seen by the internet as the world's 203.0.113.1" ||
    bad "private egress: $(cat $OUT)"
  refuse "full still isolated beside a private one" nc_user exec c1 -- curl -s -m 2 \
    http://203.0.113.10:8080/
  nc_user exec p1 -- cat /etc/resolv.conf >$OUT 2>&1 || true
  grep -q "10.0.2.3" $OUT && bad "resolv.conf names the helper's DNS" ||
    ok "private: resolv.conf is netcell's, not the helper's 10.0.2.3"
  check "private with --dns" nc_user create p2 --mode private --dns 203.0.113.10
  nc_user exec p2 -- cat /etc/resolv.conf >$OUT 2>&1 || true
  grep -qx "nameserver 203.0.113.10" $OUT && ok "private --dns: resolv.conf names it" ||
    bad "resolv.conf: $(cat $OUT)"

  # Not done yet: refused with one line, nothing left behind.
  local before
  before=$(ls "$RUN/namespaces" | sort | tr '\n' ' ')
  # --netns-of: the user's own process in a network namespace it made outside the session
  # (setpriv and unshare exec, so $! is its pid), and root's: refused with one line.
  setpriv --reuid=$U --regid=$U --clear-groups --inh-caps=-all --bounding-set=-all \
    unshare --user --map-root-user --net sleep 60 &
  local other=$!
  pids+=("$other")
  unshare --net sleep 60 &
  local roots=$!
  pids+=("$roots")
  sleep 0.2
  for who in "$other:made outside the user's rootless session" \
             "$roots:it is not one of the user's processes"; do
    if nc_user create u2 --mode private --netns-of "${who%%:*}" >$OUT 2>&1; then
      bad "create --netns-of ${who%%:*} succeeded"
    else
      [ "$(wc -l <$OUT)" = 1 ] && grep -q "${who#*:}" $OUT &&
        ok "--netns-of refused with one line: $(cat $OUT)" || bad "--netns-of: $(cat $OUT)"
    fi
  done
  kill "$other" "$roots"
  wait "$other" "$roots" 2>/dev/null || true
  [ "$(ls "$RUN/namespaces" | sort | tr '\n' ' ')" = "$before" ] &&
    ok "refusals left no record" || bad "records now: $(ls "$RUN/namespaces")"

  # --netns-of a process started by netcell exec, in a network namespace it made: adopted, wired
  # as a private namespace (seen as root from outside), and left as it was by destroy.
  nc_user exec c1 -- unshare --user --map-root-user --net sleep 60 >/dev/null 2>&1 &
  pids+=($!)
  local mine=""
  for _ in $(seq 50); do
    mine=$(user_processes | awk '$3 == "sleep" {print $1}')
    [ -n "$mine" ] && break
    sleep 0.05
  done
  check "create a1 --netns-of $mine (a process netcell exec started)" nc_user create a1 \
    --mode private --netns-of "$mine"
  nsenter -t "$mine" -n curl -s -m 3 http://203.0.113.10:8080/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=203.0.113.1" ] && ok "the adopted namespace has egress through NAT" ||
    bad "adopted egress: $(cat $OUT)"
  check "destroy a1" nc_user destroy a1
  [ "$(nsenter -t "$mine" -n ip -j link | jq -r '.[].ifname' | tr '\n' ' ')" = "lo " ] &&
    ok "destroy a1: the process's namespace is back to lo only" ||
    bad "after destroy a1: $(nsenter -t "$mine" -n ip -br link)"
  kill "$mine"

  check "destroy c1" nc_user destroy c1
  [ -n "$(user_processes)" ] && ok "session stays while p1, p2 exist" || bad "session ended early"
  check "destroy p1" nc_user destroy p1
  check "destroy p2" nc_user destroy p2
  nothing_left "after the last destroy"

  # A namespace with an owner goes with it (netcell's guard, itself inside the user's session).
  sleep 60 &
  local owner=$!
  pids+=("$owner")
  check "create with an owner" nc_user create o1 --mode private --owner "$owner"
  kill "$owner"
  for _ in $(seq 50); do [ -e "$RUN/namespaces/o1.json" ] || break; sleep 0.1; done
  nothing_left "owner exited: the guard destroyed o1, and the session ended"
  nc_user run --mode private -- curl -s -m 3 http://203.0.113.10:8080/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=203.0.113.1" ] && ok "run --mode private: egress through NAT" ||
    bad "run: $(cat $OUT)"
  nothing_left "after run"
}

# ---- escapes, each with a positive control ---------------------------------------------------
group_escape() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  check "create private e1" nc_user create e1 --mode private
  # Positive controls: a bare slirp4netns with its defaults, as the same user, does reach the
  # world's loopback through 10.0.2.2 and its DNS through 10.0.2.3.
  cat >/run/rootless-bare.sh <<'EOF'
set -u
unshare --user --map-root-user --net sleep 20 &
ns=$!
sleep 0.3
slirp4netns --configure --mtu=65520 "$ns" tap0 >/dev/null 2>&1 &
helper=$!
for _ in $(seq 50); do
  nsenter --preserve-credentials -U -n -t "$ns" ip -br addr show tap0 2>/dev/null | grep -q 10.0.2 && break
  sleep 0.1
done
in_ns() { nsenter --preserve-credentials -U -n -t "$ns" "$@"; }
in_ns curl -s -m 3 http://10.0.2.2:8081/ && echo " GATEWAY-OPEN"
in_ns dig +tries=1 +time=2 @10.0.2.3 example.test >/dev/null && echo "DNS-OPEN"
in_ns curl -s -m 3 http://203.0.113.1:8081/ && echo " HOSTADDR-OPEN"
kill "$helper" "$ns"
EOF
  as_user bash /run/rootless-bare.sh >$OUT 2>&1 || true
  grep -q "GATEWAY-OPEN" $OUT && ok "control: bare slirp4netns reaches host loopback via 10.0.2.2" ||
    bad "control gateway: $(cat $OUT)"
  grep -q "DNS-OPEN" $OUT && ok "control: bare slirp4netns's DNS 10.0.2.3 answers" ||
    bad "control dns: $(cat $OUT)"
  grep -q "HOSTADDR-OPEN" $OUT && ok "control: bare slirp4netns reaches the host's 203.0.113.1" ||
    bad "control host address: $(cat $OUT)"
  refuse "escape: the host's own address 203.0.113.1" nc_user exec e1 -- curl -s -m 3 \
    http://203.0.113.1:8081/
  refuse "escape: host loopback via the gateway 10.0.2.2" nc_user exec e1 -- curl -s -m 3 \
    http://10.0.2.2:8081/
  refuse "escape: host loopback via 127.0.0.1 forwarding" nc_user exec e1 -- curl -s -m 3 \
    http://127.0.0.1:8081/
  refuse "escape: the helper's DNS 10.0.2.3" nc_user exec e1 -- dig +tries=1 +time=2 \
    @10.0.2.3 example.test
  check "control: the internet is reachable from e1" nc_user exec e1 -- curl -s -m 3 \
    http://203.0.113.10:8080/

  # The firewall and links are out of the workload's reach; the user's session root (the
  # control) can change them.
  local holder
  holder=$(holder_pid)
  in_session() { as_user nsenter --preserve-credentials -U -m -n -t "$holder" "$@"; }
  check "control: the session's root sees netcell's table" in_session nft list table ip netcell
  in_session nft -j list set ip netcell_rootless host_addrs >$OUT 2>&1 || true
  grep -q '"203.0.113.1"' $OUT && ok "the session refuses forwarding to the host's 203.0.113.1" ||
    bad "host address guard: $(cat $OUT)"
  refuse_eperm "escape: nft flush ruleset from inside" nc_user exec e1 -- nft flush ruleset
  refuse_eperm "escape: nft add table from inside" nc_user exec e1 -- nft add table ip evil
  refuse_eperm "escape: ip link set eth0 down from inside" nc_user exec e1 -- ip link set eth0 down
  refuse_eperm "escape: ip addr add (spoofing) from inside" nc_user exec e1 -- ip addr add \
    10.209.0.66/30 dev eth0
  refuse_eperm "escape: ip route change from inside" nc_user exec e1 -- ip route replace default dev eth0
  check "control: the table is still there" in_session nft list table ip netcell
  check "control: the session's root can add an address in e1" in_session \
    nsenter --net="$RUN/netns/e1" ip addr add 192.0.2.99/32 dev lo
  nc_user exec e1 -- ip -j addr show lo >$OUT 2>&1 || true
  grep -q 192.0.2.99 $OUT && ok "control: that address is seen inside" ||
    bad "control address: $(cat $OUT)"
  nc_user exec e1 -- ip -j link show eth0 >$OUT 2>&1 || true
  grep -q '"operstate":"UP"' $OUT && ok "eth0 still up after the attempts" ||
    bad "eth0: $(cat $OUT)"
  check "e1 still reaches the internet" nc_user exec e1 -- curl -s -m 3 http://203.0.113.10:8080/
  check "destroy e1" nc_user destroy e1
  nothing_left "after the escapes"
}

# Runs each ARGS of netcell as the user at once; each must succeed.
concurrently() { # concurrently DESC ARGS...
  local desc=$1 i=0 p failed=0
  shift
  local cpids=()
  for args in "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    nc_user $args >"$OUT.$i" 2>&1 &
    cpids+=($!)
  done
  i=0
  for p in "${cpids[@]}"; do
    i=$((i + 1))
    wait "$p" || { failed=1; bad "$desc: '${!i}' failed: $(head -c 300 "$OUT.$i")"; }
  done
  [ $failed = 1 ] || ok "$desc: $# concurrent invocations succeeded"
}
# Exactly one holder and one helper of the user run, and they are the recorded ones (from /proc).
one_session() {
  local what=$1 holders helpers
  holders=$(user_processes | awk '$3 == "netcell-holder" {print $1}' | tr '\n' ' ')
  helpers=$(user_processes | awk '$3 == "slirp4netns" {print $1}' | tr '\n' ' ')
  [ "$holders" = "$(holder_pid) " ] && [ "$helpers" = "$(helper_pid) " ] &&
    [ "$(readlink /proc/${helpers% }/exe)" = "$(command -v slirp4netns)" ] &&
    ok "$what: one holder ($holders) and one helper ($helpers), both recorded" ||
    bad "$what: holders '$holders', helpers '$helpers', recorded $(holder_pid)/$(helper_pid)"
}

# ---- crashes, then gc ------------------------------------------------------------------------
group_crash() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  check "create private k1" nc_user create k1 --mode private
  local helper old_helper holder
  old_helper=$(helper_pid)
  kill -9 "$old_helper"
  for _ in $(seq 50); do [ -d /proc/$old_helper ] || break; sleep 0.05; done
  holder=$(holder_pid)
  refuse "after kill -9 of the helper, the session has no uplink" as_user nsenter \
    --preserve-credentials -U -n -t "$holder" curl -s -m 2 http://203.0.113.10:8080/
  nc_user gc >$OUT 2>&1 || true
  helper=$(helper_pid)
  grep -q "rootless uplink helper $old_helper (exited; started again as $helper)" $OUT &&
    [ "$(cat /proc/$helper/comm 2>/dev/null)" = slirp4netns ] && ok "gc restarted the helper" ||
    bad "gc after helper kill: $(cat $OUT)"
  check "k1 reaches the internet again" nc_user exec k1 -- curl -s -m 3 http://203.0.113.10:8080/
  old_helper=$helper
  kill -9 "$old_helper"
  for _ in $(seq 50); do [ -d /proc/$old_helper ] || break; sleep 0.05; done
  check "the next command repairs the helper itself" nc_user exec k1 -- curl -s -m 3 \
    http://203.0.113.10:8080/
  [ "$(helper_pid)" != "$old_helper" ] && ok "a new helper is recorded" || bad "helper not recorded"

  # Concurrent invocations after kill -9 of the helper (execs hold no run dir lock; creates do):
  # the session's lock lets exactly one of them start a new helper, and every one succeeds.
  old_helper=$(helper_pid)
  kill -9 "$old_helper"
  for _ in $(seq 50); do [ -d /proc/$old_helper ] || break; sleep 0.05; done
  concurrently "after kill -9 of the helper" "exec k1 -- curl -s -m 5 http://203.0.113.10:8080/" \
    "exec k1 -- curl -s -m 5 http://203.0.113.10:8080/" "exec k1 -- true" "exec k1 -- true" \
    "exec k1 -- true" "exec k1 -- true" \
    "create q1 --mode private" "create q2 --mode full"
  one_session "after concurrent repairs"
  check "destroy q1 q2" nc_user destroy q1 q2

  holder=$(holder_pid)
  helper=$(helper_pid)
  kill -9 "$holder"
  for _ in $(seq 50); do user_processes | grep -q . || break; sleep 0.1; done
  [ -z "$(user_processes)" ] && ok "kill -9 of the holder: the helper exits with it" ||
    bad "after holder kill: $(user_processes)"
  nc_user gc >$OUT 2>&1 || true
  grep -q "k1 (network namespace vanished)" $OUT &&
    grep -q "rootless session of holder $holder (holder exited)" $OUT &&
    ok "gc removed k1 and the dead session" || bad "gc after holder kill: $(cat $OUT)"
  nothing_left "kill -9 of the holder, then gc"

  # netcell killed mid-create, at each step of a private create.
  local at
  for at in 1 2 3 4; do
    as_user env NETCELL_FAULT_AT=$at "$NETCELL" create m$at --mode private >/dev/null 2>&1 || true
    nc_user gc >$OUT 2>&1 || true
    nothing_left "kill -9 of netcell at create step $at, then gc"
  done
  # Concurrent first creates: one session.
  concurrently "with no session" "create k2 --mode private" "create k3 --mode private" \
    "create k4 --mode full"
  one_session "after concurrent first creates"
  check "destroy k3 k4" nc_user destroy k3 k4
  check "and reaches the internet" nc_user exec k2 -- curl -s -m 3 http://203.0.113.10:8080/
  check "destroy k2" nc_user destroy k2
  nothing_left "the end"
}

# ---- published ports ---------------------------------------------------------------------------
# The helper's forwards, as its API socket lists them (read as root from outside): "PROTO ADDR:PORT"
# a line, sorted.
helper_forwards() {
  /usr/bin/python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"{\"execute\": \"list_hostfwd\"}"); s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
for e in sorted(json.loads(data)["entries"], key=lambda e: e["host_port"]):
    print("%s %s:%d" % (e["proto"], e["host_addr"], e["host_port"]))' "$RUN/rootless/slirp4netns.sock" 2>&1
}
# The session's DNAT map (pf_tcp) elements' host ports, from inside its namespaces as the user.
session_dnat_ports() {
  as_user nsenter --preserve-credentials -U -m -n -t "$(holder_pid)" nft -j list map ip netcell \
    pf_tcp 2>/dev/null | jq -r '.nftables[] | select(.map) | .map.elem // [] | .[] | .[0]' |
    sort -n | tr '\n' ' '
}
listening() { ss -Hltn "sport = :$1" | grep -q .; }
server_of_user() { user_processes | awk '$3 == "python3" {print $1}'; }

group_publish() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  world_host lan 198.51.100.1 198.51.100.2  # another "host" on the world's LAN
  check "create private p0 (keeps the session)" nc_user create p0 --mode private
  check "create w1 --publish 8090:8000" nc_user create w1 --mode private --publish 8090:8000
  http_server nc_user exec w1 -- 0.0.0.0 8000
  for _ in $(seq 50); do
    nc_user exec w1 -- curl -s -m 1 http://127.0.0.1:8000/ >/dev/null 2>&1 && break
    sleep 0.1
  done
  [ "$(helper_forwards)" = "tcp 0.0.0.0:8090" ] && ok "the helper forwards 0.0.0.0:8090" ||
    bad "helper forwards: $(helper_forwards)"
  [ "$(session_dnat_ports)" = "8090 " ] && ok "the session's DNAT map has 8090" ||
    bad "session DNAT: '$(session_dnat_ports)'"
  ip netns exec lan curl -s -m 3 http://198.51.100.1:8090/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=198.51.100.2" ] &&
    ok "published port from another host (198.51.100.2): reached, its address kept" ||
    bad "from the LAN: $(cat $OUT)"
  curl -s -m 3 http://203.0.113.1:8090/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=203.0.113.1" ] &&
    ok "published port from the world's own address 203.0.113.1" || bad "from the world: $(cat $OUT)"
  refuse "w1's own connections to the world's address are still refused" nc_user exec w1 -- \
    curl -s -m 2 http://203.0.113.1:8081/

  # UDP: a published datagram port, answered from inside.
  check "create w6 --publish 8094:9000/udp" nc_user create w6 --mode private --publish \
    8094:9000/udp
  nc_user exec w6 -- /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9000))
while True:
    q, a = s.recvfrom(512); s.sendto(b"echo " + a[0].encode(), a)' >/dev/null 2>&1 &
  pids+=($!)
  ip netns exec lan /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
for _ in range(20):
    s.sendto(b"x", ("198.51.100.1", 8094))
    try: print(s.recv(512).decode()); sys.exit(0)
    except socket.timeout: pass
sys.exit(1)' >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "echo 198.51.100.2" ] && ok "a published UDP port answers the other host" ||
    bad "UDP: $(cat $OUT)"
  check "destroy w6 (its server ends with w1's, below)" nc_user destroy w6

  # The helper killed: the next command starts it again with the namespace's forwards.
  local old_helper
  old_helper=$(helper_pid)
  kill -9 "$old_helper"
  for _ in $(seq 50); do [ -d /proc/$old_helper ] || break; sleep 0.05; done
  refuse "after kill -9 of the helper, the port is closed" curl -s -m 2 http://203.0.113.1:8090/
  nc_user gc >$OUT 2>&1 || true
  grep -q "forward of 0.0.0.0:8090/tcp for 'w1' (missing; added again)" $OUT &&
    ok "gc started the helper again with w1's forward" || bad "gc: $(cat $OUT)"
  ip netns exec lan curl -s -m 3 http://198.51.100.1:8090/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=198.51.100.2" ] && ok "published port works again" ||
    bad "after the repair: $(cat $OUT)"

  # A host port someone else listens on: one line, nothing left.
  /usr/bin/python3 -c 'import socket, time
s = socket.socket(); s.bind(("0.0.0.0", 8091)); s.listen(1); time.sleep(60)' &
  pids+=($!)
  for _ in $(seq 50); do listening 8091 && break; sleep 0.05; done
  local links_before
  links_before=$(as_user nsenter --preserve-credentials -U -n -t "$(holder_pid)" ip -br link | wc -l)
  if nc_user create w2 --mode private --publish 8091:8000 >$OUT 2>&1; then
    bad "publishing a taken port succeeded"
  else
    [ "$(wc -l <$OUT)" = 1 ] && grep -q "cannot publish host port 0.0.0.0:8091/tcp" $OUT &&
      ok "a taken port: one line ($(cat $OUT))" || bad "taken port: $(cat $OUT)"
  fi
  [ ! -e "$RUN/namespaces/w2.json" ] && [ ! -e "$RUN/rootless/ports/w2" ] &&
    [ -z "$(ls -A "$RUN/ports/tcp-8091" 2>/dev/null)" ] &&
    [ "$(helper_forwards)" = "tcp 0.0.0.0:8090" ] && [ "$(session_dnat_ports)" = "8090 " ] &&
    [ "$(as_user nsenter --preserve-credentials -U -n -t "$(holder_pid)" ip -br link | wc -l)" \
      = "$links_before" ] &&
    ok "the failed create left no record, claim, journal, forward, DNAT element or link" ||
    bad "left: $(ls "$RUN/namespaces") / $(helper_forwards) / $(session_dnat_ports)"

  # Ports below net.ipv4.ip_unprivileged_port_start: refused first, allowed once the host does.
  if nc_user create w3 --mode private --publish 80:8000 >$OUT 2>&1; then
    bad "publishing port 80 succeeded"
  else
    [ "$(wc -l <$OUT)" = 1 ] && grep -q "ip_unprivileged_port_start" $OUT &&
      ok "port 80 refused with one line ($(cat $OUT))" || bad "port 80: $(cat $OUT)"
  fi
  [ ! -e "$RUN/namespaces/w3.json" ] && ok "the refusal left no record" || bad "w3 recorded"
  sysctl -qw net.ipv4.ip_unprivileged_port_start=80
  check "port 80 once the world's ip_unprivileged_port_start is 80" nc_user create w3 \
    --mode private --publish 80:8000
  listening 80 && ok "the helper listens on :80" || bad "nothing listens on :80"
  sysctl -qw net.ipv4.ip_unprivileged_port_start=1024
  check "destroy w3" nc_user destroy w3
  listening 80 && bad "port 80 still open after destroy" || ok "destroy w3 closed port 80"

  # One (protocol, host port) per session, whatever host address.
  check "publish 127.0.0.1:8092" nc_user create w4 --mode private --publish 127.0.0.1:8092:8000
  if nc_user create w5 --mode private --publish 203.0.113.1:8092:8000 >$OUT 2>&1; then
    bad "the same host port on another address succeeded"
  else
    [ "$(wc -l <$OUT)" = 1 ] && grep -q "published already by 'w4'" $OUT &&
      ok "the same port on another address: one line ($(cat $OUT))" || bad "w5: $(cat $OUT)"
  fi
  check "destroy w4" nc_user destroy w4

  local server
  server=$(server_of_user)
  [ -n "$server" ] && kill $server
  check "destroy w1" nc_user destroy w1
  [ -z "$(helper_forwards)" ] && [ -z "$(session_dnat_ports)" ] && ! listening 8090 &&
    ok "destroy w1: no forward, DNAT element or listener left" ||
    bad "after destroy w1: '$(helper_forwards)' '$(session_dnat_ports)'"
  refuse "the port is closed" ip netns exec lan curl -s -m 2 http://198.51.100.1:8090/

  # netcell killed at each step of a published private create (before and after the helper's
  # forward was added), then gc: the forward and its journal go too.
  local at left=0
  for at in $(seq 10); do
    as_user env NETCELL_FAULT_AT=$at "$NETCELL" create m$at --mode private --publish 8093:8000 \
      >/dev/null 2>&1 || true
    [ "$(helper_forwards)" = "tcp 0.0.0.0:8093" ] && left=$((left + 1))
    nc_user gc >/dev/null 2>&1 || true
    [ -z "$(helper_forwards)" ] && ! listening 8093 && [ -z "$(ls -A "$RUN/rootless/ports")" ] &&
      [ ! -e "$RUN/namespaces/m$at.json" ] ||
      bad "kill -9 at create step $at, then gc: '$(helper_forwards)' $(ls "$RUN/rootless/ports")"
  done
  [ $left -gt 0 ] && ok "kill -9 of netcell at each step of a create with --publish ($left" \
    "left a forward), then gc: no forward, journal or record left" ||
    bad "no step left a forward for gc"

  check "destroy p0" nc_user destroy p0
  nothing_left "after the published ports"
}

# ---- bridged networks ----------------------------------------------------------------------------
address_of() { nc_user info "$1" --json | jq -r '.interfaces[] | select(.name == "eth0") |
  .addresses[0]' | cut -d/ -f1; }
in_holder() { as_user nsenter --preserve-credentials -U -m -n -t "$(holder_pid)" "$@"; }
ports_of() { in_holder ip -j link show master "$1" | jq -r '.[].ifname' | sort | tr '\n' ' '; }

group_bridged() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  check "network create n1 (no NAT)" nc_user network create n1 --subnet 10.77.0.0/24
  check "network create n2 --nat" nc_user network create n2 --subnet 10.78.0.0/24 --nat
  [ -z "$(user_processes)" ] && [ -e "$RUN/rootless/networks/n1" ] &&
    [ -e "$RUN/rootless/networks/n2" ] &&
    ok "networks without namespaces are journaled and keep no session running" ||
    bad "after network create: $(user_processes) $(ls "$RUN/rootless/networks" 2>&1)"
  check "create b1 in n1" nc_user create b1 --network n1
  check "create b2 in n1" nc_user create b2 --network n1
  check "create c1 in n2" nc_user create c1 --network n2
  local b1 b2 c1
  b1=$(address_of b1)
  b2=$(address_of b2)
  c1=$(address_of c1)
  [ "$(ports_of ncbr0)" = "$(nc_user info b1 --json | jq -r .host_interface) $(nc_user info b2 \
    --json | jq -r .host_interface) " ] && [ -n "$(ports_of ncbr1)" ] &&
    ok "the session's bridges: ncbr0 with b1's and b2's ports, ncbr1 with c1's" ||
    bad "bridges: ncbr0 '$(ports_of ncbr0)' ncbr1 '$(ports_of ncbr1)'"
  http_server nc_user exec b2 -- 0.0.0.0 8000
  # A service in the session's own network namespace (the bridges' "host").
  http_server in_holder 0.0.0.0 8085
  for _ in $(seq 50); do
    nc_user exec b2 -- curl -s -m 1 http://127.0.0.1:8000/ >/dev/null 2>&1 &&
      in_holder curl -s -m 1 http://127.0.0.1:8085/ >/dev/null 2>&1 && break
    sleep 0.1
  done
  nc_user exec b1 -- curl -s -m 3 "http://$b2:8000/" >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=$b1" ] && ok "b1 ($b1) reaches b2 ($b2) on their bridge" ||
    bad "b1 -> b2: $(cat $OUT)"
  refuse "c1 (n2) cannot reach b2 (n1)" nc_user exec c1 -- curl -s -m 2 "http://$b2:8000/"
  check "control: the session itself reaches b2" in_holder curl -s -m 2 "http://$b2:8000/"
  check "control: the session's service answers" in_holder curl -s -m 2 http://127.0.0.1:8085/
  refuse "b1 cannot reach the session's own address 10.77.0.1 (no --host-access)" nc_user exec \
    b1 -- curl -s -m 2 http://10.77.0.1:8085/
  refuse "c1 cannot reach the session's 10.78.0.1" nc_user exec c1 -- curl -s -m 2 \
    http://10.78.0.1:8085/
  refuse "b1 cannot reach the session's uplink address 10.0.2.100" nc_user exec b1 -- \
    curl -s -m 2 http://10.0.2.100:8085/
  refuse "b1 (n1 without NAT) has no way out" nc_user exec b1 -- curl -s -m 2 \
    http://203.0.113.10:8080/
  nc_user exec c1 -- curl -s -m 3 http://203.0.113.10:8080/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=203.0.113.1" ] && ok "c1 (n2 --nat) reaches the internet through NAT" ||
    bad "c1 egress: $(cat $OUT)"
  refuse "c1 cannot reach the world's own address 203.0.113.1" nc_user exec c1 -- curl -s -m 2 \
    http://203.0.113.1:8081/
  refuse "c1 cannot reach the world's loopback via 10.0.2.2" nc_user exec c1 -- curl -s -m 2 \
    http://10.0.2.2:8081/
  refuse_eperm "b1 cannot take its port off the bridge" nc_user exec b1 -- ip link set eth0 down
  refuse_eperm "b1 cannot spoof another address" nc_user exec b1 -- ip addr add 10.77.0.99/24 \
    dev eth0

  # kill -9 of the holder: gc removes the namespaces; the networks stay, their bridges are made
  # again by the next session.
  local server
  for server in $(server_of_user); do kill "$server"; done
  kill -9 "$(holder_pid)"
  for _ in $(seq 50); do user_processes | grep -q . || break; sleep 0.1; done
  nc_user gc >$OUT 2>&1 || true
  grep -q "b1 (network namespace vanished)" $OUT && [ -z "$(user_processes)" ] &&
    ok "kill -9 of the holder, then gc: its namespaces' records removed" || bad "gc: $(cat $OUT)"
  nc_user network list >$OUT 2>&1 || true
  grep -q n1 $OUT && grep -q n2 $OUT && ok "the networks are still listed" ||
    bad "network list: $(cat $OUT)"
  check "create b3 in n1 after the holder's death" nc_user create b3 --network n1
  check "create b4 in n1" nc_user create b4 --network n1
  [ -n "$(ports_of ncbr0)" ] && in_holder ip link show ncbr1 >/dev/null 2>&1 &&
    ok "the new session made both networks' bridges again" || bad "bridges: $(in_holder ip -br link)"
  http_server nc_user exec b4 -- 0.0.0.0 8000
  local b3 b4
  b3=$(address_of b3)
  b4=$(address_of b4)
  for _ in $(seq 50); do
    nc_user exec b4 -- curl -s -m 1 http://127.0.0.1:8000/ >/dev/null 2>&1 && break
    sleep 0.1
  done
  nc_user exec b3 -- curl -s -m 3 "http://$b4:8000/" >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=$b3" ] && ok "b3 reaches b4 on the bridge made again" ||
    bad "b3 -> b4: $(cat $OUT)"
  for server in $(server_of_user); do kill "$server"; done
  if nc_user network rm n1 >$OUT 2>&1; then bad "network rm of a network in use succeeded"; else
    ok "network rm n1 refused while in use"
  fi
  check "destroy b3 b4" nc_user destroy b3 b4
  check "network rm n1 n2" nc_user network rm n1 n2
  nothing_left "after the bridged networks"
  [ ! -e "$RUN/networks/n1.json" ] && ok "no network record left" || bad "n1 still recorded"

  # A topology file: links and routes between the user's namespaces, b not forwarding.
  cp "$(dirname "$0")/../examples/three-hosts.yaml" /run/ncrootless/three.yaml
  chmod 0644 /run/ncrootless/three.yaml
  check "up examples/three-hosts.yaml" nc_user up /run/ncrootless/three.yaml
  [ "$(in_holder nsenter --net="$RUN/netns/a" ip -j addr show to-b | jq -r \
    '.[0].addr_info[] | select(.family == "inet") | .local')" = 10.0.1.1 ] &&
    ok "a's link to-b has 10.0.1.1 (ip -j inside the session)" || bad "a: $(in_holder \
    nsenter --net="$RUN/netns/a" ip -br addr)"
  http_server nc_user exec b -- 10.0.1.2 8000
  http_server nc_user exec c -- 10.0.2.2 8000
  for _ in $(seq 50); do
    nc_user exec b -- curl -s -m 1 http://10.0.1.2:8000/ >/dev/null 2>&1 &&
      nc_user exec c -- curl -s -m 1 http://10.0.2.2:8000/ >/dev/null 2>&1 && break
    sleep 0.1
  done
  nc_user exec a -- curl -s -m 3 http://10.0.1.2:8000/ >$OUT 2>&1 || true
  [ "$(cat $OUT)" = "peer=10.0.1.1" ] && ok "topology: a reaches b over their link" ||
    bad "a -> b: $(cat $OUT)"
  check "topology: b reaches c" nc_user exec b -- curl -s -m 3 http://10.0.2.2:8000/
  refuse "topology: a does not reach c (b does not forward)" nc_user exec a -- curl -s -m 2 \
    http://10.0.2.2:8000/
  for server in $(server_of_user); do kill "$server"; done
  check "down examples/three-hosts.yaml" nc_user down /run/ncrootless/three.yaml
  nothing_left "after the topology"
}

# ---- rate limits ---------------------------------------------------------------------------------
tbf_bits() { jq -r '[.[] | select(.kind == "tbf") | .options.rate * 8] | first // 0'; }
# iperf3 from namespace NS to the internet for SECONDS (ARGS: -R for the other direction): bit/s.
iperf_bits() { # iperf_bits NS SECONDS [ARGS...]
  local ns=$1 secs=$2
  shift 2
  nc_user exec "$ns" -- iperf3 -c 203.0.113.10 -t "$secs" -J "$@" 2>/dev/null |
    jq -r '.end.sum_received.bits_per_second // 0 | floor'
}
# A one-connection iperf3 server in wan, once the last one has let go of its port.
iperf_server() {
  for _ in $(seq 50); do
    ip netns exec wan ss -Hltn 'sport = :5201' | grep -q . || break
    sleep 0.1
  done
  ip netns exec wan iperf3 -s -D -1 -p 5201 --pidfile /run/rootless-iperf.pid >/dev/null
  for _ in $(seq 50); do
    ip netns exec wan ss -Hltn 'sport = :5201' | grep -q . && break
    sleep 0.05
  done
}
# The MTU of namespace NS's eth0, read inside it (ip -j, from the session).
eth0_mtu() { in_holder nsenter --net="$RUN/netns/$1" ip -j link show eth0 | jq '.[0].mtu'; }
# Whether measured bit/s lies within 50 % to 110 % of the configured rate.
near() { [ "$1" -ge $(($2 / 2)) ] && [ "$1" -le $(($2 * 11 / 10)) ]; }

group_rate() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  iperf_server
  check "create r1 --egress-rate 5mbit --ingress-rate 20mbit --mtu 1500" nc_user create r1 \
    --mode private --egress-rate 5mbit --ingress-rate 20mbit --mtu 1500
  check "create r0 (no limit: the control)" nc_user create r0 --mode private
  local host_if bits
  host_if=$(nc_user info r1 --json | jq -r .host_interface)
  # An explicit --mtu wins over the session's default (the helper's 65520).
  [ "$(eth0_mtu r1)" = 1500 ] && [ "$(in_holder ip -j link show "$host_if" | jq '.[0].mtu')" = 1500 ] &&
    [ "$(nc_user info r1 --json | jq '.interfaces[] | select(.name == "eth0") | .mtu')" = 1500 ] &&
    ok "r1 --mtu 1500: MTU 1500 inside, on its host end and in info" ||
    bad "r1 MTU: inside $(eth0_mtu r1), info $(nc_user info r1 --json | jq -c .interfaces)"
  [ "$(in_holder tc -j qdisc show dev "$host_if" | tbf_bits)" = 20000000 ] &&
    [ "$(in_holder nsenter --net="$RUN/netns/r1" tc -j qdisc show dev eth0 | tbf_bits)" = 5000000 ] &&
    ok "tbf in the session: 20 Mbit/s on $host_if (ingress), 5 Mbit/s on r1's eth0 (egress)" ||
    bad "qdiscs: $(in_holder tc -j qdisc show dev "$host_if")"
  bits=$(iperf_bits r1 2)
  near "$bits" 5000000 && ok "r1 egress measured $bits bit/s (limit 5 Mbit/s)" ||
    bad "r1 egress: $bits bit/s"
  iperf_server
  bits=$(iperf_bits r1 2 -R)
  near "$bits" 20000000 && ok "r1 ingress measured $bits bit/s (limit 20 Mbit/s)" ||
    bad "r1 ingress: $bits bit/s"
  # Without --mtu, the helper's MTU (65520): the bucket still holds a whole frame.
  check "create r2 --ingress-rate 20mbit (no --mtu)" nc_user create r2 --mode private \
    --ingress-rate 20mbit
  host_if=$(nc_user info r2 --json | jq -r .host_interface)
  [ "$(eth0_mtu r2)" = 65520 ] &&
    [ "$(in_holder ip -j link show "$host_if" | jq '.[0].mtu')" = 65520 ] &&
    [ "$(nc_user info r2 --json | jq '.interfaces[] | select(.name == "eth0") | .mtu')" = 65520 ] &&
    ok "r2 without --mtu: the helper's MTU 65520 inside, on its host end and in info" ||
    bad "r2 MTU: inside $(eth0_mtu r2), info $(nc_user info r2 --json | jq -c .interfaces)"
  iperf_server
  bits=$(iperf_bits r2 2 -R)
  near "$bits" 20000000 && ok "r2 (MTU 65520) ingress measured $bits bit/s (limit 20 Mbit/s)" ||
    bad "r2 ingress: $bits bit/s"
  check "destroy r2" nc_user destroy r2
  iperf_server
  bits=$(iperf_bits r0 1)
  [ "$bits" -gt 100000000 ] && ok "control: r0 without a limit measured $bits bit/s" ||
    bad "control r0: $bits bit/s"
  check "destroy r1 r0" nc_user destroy r1 r0
  nothing_left "after the rate limits"
}

# ---- egress policies (address rules) --------------------------------------------------------------
# reaches DESC NS URL / blocked DESC NS URL: a connection from namespace NS succeeds / fails.
reaches() { check "$1" nc_user exec "$2" -- curl -s -m 3 "$3"; }
blocked() { refuse "$1" nc_user exec "$2" -- curl -s -m 2 "$3"; }

group_policy() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  http_server ip netns exec wan 0.0.0.0 8083
  for _ in $(seq 50); do ip netns exec wan curl -s -m 1 http://127.0.0.1:8083/ >/dev/null && break
    sleep 0.1; done
  check "create g1 --allow 203.0.113.10:8080/tcp" nc_user create g1 --mode private \
    --allow 203.0.113.10:8080/tcp
  check "create g0 without a policy (the control)" nc_user create g0 --mode private
  reaches "g1 reaches the allowed 203.0.113.10:8080" g1 http://203.0.113.10:8080/
  blocked "g1 cannot reach 203.0.113.10:8083 (not allowed)" g1 http://203.0.113.10:8083/
  reaches "control: g0 reaches 203.0.113.10:8083" g0 http://203.0.113.10:8083/
  in_holder nft -j list ruleset >$OUT 2>&1 || true
  grep -q '"203.0.113.10"' $OUT && ok "the session's table holds g1's rule (nft -j)" ||
    bad "no rule for 203.0.113.10 in the session: $(head -c 300 $OUT)"
  refuse_eperm "escape: nft flush ruleset from g1" nc_user exec g1 -- nft flush ruleset
  refuse_eperm "escape: nft delete table from g1" nc_user exec g1 -- nft delete table ip netcell
  blocked "g1 still cannot reach 203.0.113.10:8083" g1 http://203.0.113.10:8083/
  reaches "g1 still reaches 203.0.113.10:8080" g1 http://203.0.113.10:8080/
  blocked "g1 still cannot reach the world's own address" g1 http://203.0.113.1:8081/
  # Its DNS is netcell's resolver at the gateway: a policy without domain rules allows no name.
  nc_user exec g1 -- dig +tries=1 +time=2 example.test >$OUT 2>&1 || true
  grep -q "status: REFUSED" $OUT && ok "g1's DNS (its resolv.conf): a name is REFUSED" ||
    bad "g1's DNS: $(head -c 300 $OUT)"
  nc_user policy show g1 --json >$OUT 2>&1 || true
  grep -q "203.0.113.10" $OUT && ok "policy show g1: $(tr -d '\n ' <$OUT | head -c 120)" ||
    bad "policy show: $(cat $OUT)"
  # policy set: the new rules hold at once, the old ones are gone.
  check "policy set g0 --allow 203.0.113.10:8083" nc_user policy set g0 --allow \
    203.0.113.10:8083/tcp
  reaches "g0 now reaches :8083" g0 http://203.0.113.10:8083/
  blocked "g0 no longer reaches :8080" g0 http://203.0.113.10:8080/
  check "policy clear g0" nc_user policy clear g0
  reaches "g0 reaches :8080 again" g0 http://203.0.113.10:8080/
  check "destroy g1 g0" nc_user destroy g1 g0
  nothing_left "after the policies"
}

# ---- domain rules: netcell's resolver inside the session -----------------------------------
service_pid() { sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$RUN/service.json" 2>/dev/null; }
# The pid's process is the one in the service record, and it is alive.
service_running() {
  local p; p=$(service_pid)
  [ -n "$p" ] && [ -e "/proc/$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = netcell-service ]
}
running() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# A lookup from inside NS that runs no netcell command (a netcell command would restart a dead
# service first): dig in the namespace's network namespace, entered from the session's.
raw_lookup() { # raw_lookup NS SERVER NAME
  in_holder nsenter --net="$RUN/netns/$1" dig +tries=1 +time=2 "@$2" "$3"
}
same_ns() { [ "$(readlink /proc/$1/ns/$3)" = "$(readlink /proc/$2/ns/$3)" ]; }
# The elements of the session's learned sets (nft -j, in the session's namespaces).
learned_elements() {
  in_holder nft -j list ruleset 2>/dev/null |
    jq -c '[.nftables[] | select(.set? and (.set.name | startswith("pol_learned"))) |
            .set.elem // [] | .[]]' 2>/dev/null || echo "[]"
}
stub_saw() { grep -c " $1 " /run/rootless-stub.log 2>/dev/null || true; }
lookup() { nc_user exec "$1" -- dig +tries=1 +time=2 "$2"; }
resolves() { # resolves DESC NS NAME ADDRESS
  lookup "$2" "$3" >$OUT 2>&1 || true
  if grep -q "status: NOERROR" $OUT && grep -Eq "^$3\.[[:space:]].*A[[:space:]]+$4\$" $OUT; then
    ok "$1"; else bad "$1: $(grep -E "status|^$3" $OUT | head -c 300)"; fi
}
wait_service_gone() {
  for _ in $(seq 60); do service_running || return 0; sleep 0.05; done
  return 1
}

group_domains() {
  [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" = 666 ] || give_tun
  # "The CDN": two addresses of the wan; answers give allowed.test only .10, never .11.
  ip -n wan addr add 203.0.113.11/24 dev wan1
  cat >/run/rootless-zone.json <<'EOF'
{"allowed.test": {"a": ["203.0.113.10"], "ttl": 60},
 "denied.test": {"a": ["203.0.113.10"], "ttl": 60},
 "other.test": {"a": ["203.0.113.11"], "ttl": 60}}
EOF
  : >/run/rootless-stub.log
  ip netns exec wan python3 "$SUPPORT/dns_stub.py" --config /run/rootless-zone.json \
    --listen 203.0.113.10 --log /run/rootless-stub.log --lifetime 170 --daemon \
    --pid-file /run/rootless-stub.pid
  pids+=("$(cat /run/rootless-stub.pid)")
  check "create d1 --allow allowed.test:8080/tcp (a name in --allow)" nc_user create d1 \
    --mode private --allow allowed.test:8080/tcp --dns 203.0.113.10
  check "create d0 without a policy (the control)" nc_user create d0 --mode private \
    --dns 203.0.113.10
  local svc holder
  svc=$(service_pid) holder=$(holder_pid)
  if service_running && same_ns "$svc" "$holder" user && same_ns "$svc" "$holder" net &&
     same_ns "$svc" "$holder" mnt; then
    ok "netcell-service $svc runs in the session's user, mount and network namespaces"
  else bad "service: pid '$svc', record $(cat $RUN/service.json 2>&1), holder $holder"; fi
  # By hand, outside the session: it refuses with one line and leaves the running one alone.
  if as_user "$(dirname "$NETCELL")/netcell-service" --run-dir "$RUN" --netns-dir "$RUN/netns" \
       >$OUT 2>&1; then bad "netcell-service outside the session ran"
  else
    [ "$(wc -l <$OUT)" = 1 ] && grep -q "not inside that session" $OUT &&
      [ "$(service_pid)" = "$svc" ] && service_running && ok "netcell-service outside the session refused: $(cat $OUT)" ||
      bad "netcell-service outside the session: $(cat $OUT)"
  fi
  [ "$(learned_elements)" = "[]" ] && ok "nothing learned before a lookup" ||
    bad "learned before a lookup: $(learned_elements)"
  blocked "d1 cannot reach 203.0.113.10:8080 before a lookup" d1 http://203.0.113.10:8080/
  resolves "d1 resolves allowed.test through the resolver" d1 allowed.test 203.0.113.10
  learned_elements | grep -q '"203.0.113.10"' &&
    ok "the session's learned set holds 203.0.113.10 (nft -j in the session)" ||
    bad "not learned: $(learned_elements)"
  reaches "d1 reaches http://allowed.test:8080/ by name" d1 http://allowed.test:8080/
  [ "$(stub_saw allowed.test)" -ge 1 ] && ok "the stub saw allowed.test (its log works)" ||
    bad "the stub never saw allowed.test: $(cat /run/rootless-stub.log)"
  # A name the policy does not allow: REFUSED, never upstream.
  lookup d1 denied.test >$OUT 2>&1 || true
  grep -q "status: REFUSED" $OUT && ok "d1: denied.test is REFUSED" ||
    bad "denied.test: $(head -c 300 $OUT)"
  [ "$(stub_saw denied.test)" = 0 ] && ok "the stub never saw denied.test" ||
    bad "denied.test went upstream: $(cat /run/rootless-stub.log)"
  resolves "control: d0 resolves denied.test (it exists upstream)" d0 denied.test 203.0.113.10
  # An address of the same "CDN" no answer gave.
  blocked "d1 cannot reach 203.0.113.11:8080 (never answered)" d1 http://203.0.113.11:8080/
  reaches "control: d0 reaches 203.0.113.11:8080" d0 http://203.0.113.11:8080/
  # The denied-flow log (NFLOG read by the service inside the session).
  local logged=""
  for _ in $(seq 40); do
    nc_user log d1 --json >$OUT 2>&1 || true
    grep -q '203.0.113.11' $OUT && { logged=1; break; }
    sleep 0.05
  done
  [ -n "$logged" ] && ok "netcell log d1: the refused flow to 203.0.113.11" ||
    bad "netcell log d1: $(head -c 300 $OUT); service log: $(tail -n 3 $RUN/service.log)"
  grep -q '"name":"denied.test"' $OUT && ok "netcell log d1: the refused name denied.test" ||
    bad "no refused name in the log: $(head -c 300 $OUT)"
  # policy show: the learned destination with the kernel's counters (read in the session).
  nc_user policy show d1 --json >$OUT 2>&1 || true
  jq -e '[.. | objects | select(.address? == "203.0.113.10")] | length > 0' $OUT >/dev/null &&
    ok "policy show d1 lists the learned 203.0.113.10" || bad "policy show: $(head -c 400 $OUT)"
  # The workload cannot remove the rules; the learned one still holds.
  refuse_eperm "escape: nft flush ruleset from d1" nc_user exec d1 -- nft flush ruleset
  refuse_eperm "escape: nft delete table from d1" nc_user exec d1 -- nft delete table ip netcell
  reaches "d1 still reaches 203.0.113.10:8080 (learned)" d1 http://203.0.113.10:8080/
  blocked "d1 still cannot reach 203.0.113.11:8080" d1 http://203.0.113.11:8080/
  # Only through the resolver: DNS to the upstream itself is refused by the policy.
  refuse "d1 cannot ask the upstream 203.0.113.10 directly" nc_user exec d1 -- dig +tries=1 \
    +time=2 @203.0.113.10 allowed.test
  check "control: d0 asks 203.0.113.10 directly" nc_user exec d0 -- dig +tries=1 +time=2 \
    @203.0.113.10 allowed.test
  # kill -9 of the service: DNS fails closed; the next command starts it again.
  local gw
  gw=$(nc_user exec d1 -- cat /etc/resolv.conf | awk '$1 == "nameserver" {print $2; exit}')
  check "control: d1's lookup at its resolver $gw without a netcell command" raw_lookup d1 \
    "$gw" allowed.test
  kill -9 "$svc"
  wait_service_gone || true
  refuse "after kill -9 of the service: d1's lookup at $gw fails closed" raw_lookup d1 "$gw" \
    allowed.test
  check "the next command (list)" nc_user list
  if service_running && [ "$(service_pid)" != "$svc" ] && same_ns "$(service_pid)" "$holder" net
  then ok "the next command restarted the service in the session (pid $(service_pid))"
  else bad "not restarted: $(cat $RUN/service.json 2>&1)"; fi
  resolves "d1 resolves allowed.test again" d1 allowed.test 203.0.113.10
  check "d1's lookup at $gw without a netcell command works again" raw_lookup d1 "$gw" \
    allowed.test
  lookup d1 denied.test >$OUT 2>&1 || true
  grep -q "status: REFUSED" $OUT &&
    ok "d1: denied.test still REFUSED (policy rebuilt from the records)" ||
    bad "denied.test after the restart: $(head -c 300 $OUT)"
  svc=$(service_pid)
  kill -9 "$svc"
  wait_service_gone || true
  check "netcell gc" nc_user gc
  if service_running && [ "$(service_pid)" != "$svc" ] && same_ns "$(service_pid)" "$holder" net
  then ok "gc restarted the service in the session (pid $(service_pid))"
  else bad "gc did not restart it: $(cat $RUN/service.json 2>&1)"; fi
  reaches "d1 reaches http://allowed.test:8080/ after gc" d1 http://allowed.test:8080/
  # The workload runs as the user, like the service: it may signal it (not ptrace it: it has no
  # capability in the session's user namespace). Killed, DNS fails closed as above; in a PID
  # namespace of its own (--pid-ns) it cannot even name it.
  svc=$(service_pid)
  refuse "d1 in a PID namespace of its own cannot kill the service" nc_user exec d1 --pid-ns -- \
    kill -9 "$svc"
  service_running && [ "$(service_pid)" = "$svc" ] && ok "the service lives on ($svc)" ||
    bad "the service is gone: $(cat $RUN/service.json 2>&1)"
  refuse_eperm "d1 cannot ptrace the service" nc_user exec d1 -- timeout 2 strace -qq \
    -e trace=none -p "$svc"
  nc_user exec d1 -- sh -c 'sleep 3 & timeout 1 strace -qq -e trace=none -p $!; echo "rc=$?"' \
    >$OUT 2>&1 || true
  grep -q "rc=124" $OUT && ok "control: d1 can ptrace its own process" ||
    bad "control ptrace: $(head -c 200 $OUT)"
  nc_user exec d1 -- kill -9 "$svc" >$OUT 2>&1 && ok "d1 (same uid) can kill the service" ||
    ok "d1 cannot kill the service: $(head -c 200 $OUT)"
  wait_service_gone || true
  if running "$svc"; then ok "the service survived d1's kill"
  else
    refuse "after d1 killed the service: its lookup at $gw fails closed" raw_lookup d1 "$gw" \
      allowed.test
    check "the next command (list) after d1 killed it" nc_user list
    service_running && ok "restarted (pid $(service_pid))" || bad "not restarted"
  fi
  # kill -9 of the uplink helper: the service's upstream queries have no way out until the next
  # command that joins the session starts the helper again; the service itself lives on.
  svc=$(service_pid)
  kill -9 "$(helper_pid)"
  for _ in $(seq 40); do running "$(helper_pid)" || break; sleep 0.05; done
  raw_lookup d1 "$gw" allowed.test >$OUT 2>&1 || true
  grep -q "status: NOERROR" $OUT && bad "an answer without the helper: $(head -c 200 $OUT)" ||
    ok "without the helper, no answer for allowed.test ($(grep -o 'status: [A-Z]*' $OUT ||
      echo timeout))"
  local dead_helper; dead_helper=$(helper_pid)
  check "the next command joining the session (exec) starts the helper again" nc_user exec d1 -- \
    true
  running "$(helper_pid)" && [ "$(helper_pid)" != "$dead_helper" ] &&
    [ "$(service_pid)" = "$svc" ] && service_running &&
    ok "a new helper, the same service" ||
    bad "helper $(helper_pid), service $(service_pid) (was $svc)"
  raw_lookup d1 "$gw" allowed.test >$OUT 2>&1 || true
  grep -q "status: NOERROR" $OUT && ok "d1's lookup at $gw answers NOERROR again" ||
    bad "after the helper: $(head -c 300 $OUT)"
  # policy set of a namespace that had none: its DNS becomes the resolver's, its names its rules.
  check "policy set d0 --allow-domain other.test:8080/tcp" nc_user policy set d0 \
    --allow-domain other.test:8080/tcp
  resolves "d0 resolves other.test through the resolver" d0 other.test 203.0.113.11
  reaches "d0 reaches http://other.test:8080/" d0 http://other.test:8080/
  blocked "d0 no longer reaches 203.0.113.10:8080 (not its name's)" d0 http://203.0.113.10:8080/
  check "policy clear d0" nc_user policy clear d0
  reaches "d0 reaches 203.0.113.10:8080 again" d0 http://203.0.113.10:8080/
  # A bridged namespace's queries come in on its network's bridge (in the session).
  check "network create n1 --nat" nc_user network create n1 --subnet 10.77.0.0/24 --nat
  check "create b1 --network n1 --allow-domain other.test:8080/tcp" nc_user create b1 \
    --network n1 --allow-domain other.test:8080/tcp --dns 203.0.113.10
  resolves "b1 (bridged) resolves other.test through the resolver" b1 other.test 203.0.113.11
  reaches "b1 reaches http://other.test:8080/" b1 http://other.test:8080/
  blocked "b1 cannot reach 203.0.113.10:8080" b1 http://203.0.113.10:8080/
  lookup b1 denied.test >$OUT 2>&1 || true
  grep -q "status: REFUSED" $OUT && ok "b1: denied.test is REFUSED" ||
    bad "b1 denied.test: $(head -c 300 $OUT)"
  check "destroy b1" nc_user destroy b1
  check "network rm n1" nc_user network rm n1
  # A topology file with a domain rule (refused before domain rules worked in rootless mode).
  printf 'name: t1\nnamespaces:\n  t: {mode: private, egress: {allow: [allowed.test]}}\n' \
    >/run/ncrootless/t1.yaml
  check "up a topology whose namespace has a domain rule" nc_user up /run/ncrootless/t1.yaml
  lookup t denied.test >$OUT 2>&1 || true
  grep -q "status: REFUSED" $OUT && ok "t (from the topology): denied.test is REFUSED" ||
    bad "t denied.test: $(head -c 300 $OUT)"
  check "down the topology" nc_user down /run/ncrootless/t1.yaml
  # The last policy namespace goes: the service stops, its learned state goes, the session stays.
  svc=$(service_pid)
  check "destroy d1 (the last policy namespace)" nc_user destroy d1
  if ! service_running && ! running "$svc" && [ ! -e "$RUN/service.json" ]; then
    ok "the service stopped with the last policy namespace"
  else bad "service left: $(cat $RUN/service.json 2>&1) $(user_processes)"; fi
  [ -z "$(ls -A "$RUN/learned" 2>/dev/null)" ] && ok "nothing left in $RUN/learned" ||
    bad "learned files left: $(ls -A $RUN/learned)"
  [ -n "$(holder_pid)" ] && [ "$(learned_elements)" = "[]" ] &&
    ok "the session (for d0) holds no learned element" ||
    bad "learned elements left: $(learned_elements)"
  reaches "d0 still reaches 203.0.113.10:8080" d0 http://203.0.113.10:8080/
  # The session ends (kill -9 of its holder): its service ends with it.
  check "create d2 --allow-domain allowed.test" nc_user create d2 --mode private \
    --allow-domain allowed.test --dns 203.0.113.10
  svc=$(service_pid)
  service_running && ok "a service again (pid $svc)" || bad "no service for d2"
  kill -9 "$(holder_pid)"
  wait_service_gone && ok "the service ended with the session's holder" ||
    bad "the service outlived the holder: $(user_processes)"
  check "netcell gc after the holder's end" nc_user gc
  [ ! -e "$RUN/service.json" ] && [ -z "$(ls -A "$RUN/learned" 2>/dev/null)" ] &&
    ok "gc: no service record, nothing in learned/" ||
    bad "left: $(find $RUN -mindepth 1 | tr '\n' ' ')"
  nothing_left "after the domain rules"
  # run: a namespace for one command, its resolver with it.
  check "run --allow-domain allowed.test:8080/tcp -- curl http://allowed.test:8080/" nc_user run \
    --mode private --allow-domain allowed.test:8080/tcp --dns 203.0.113.10 -- curl -s -m 3 \
    http://allowed.test:8080/
  refuse "run --allow-domain allowed.test:8080/tcp -- curl http://other.test:8080/" nc_user run \
    --mode private --allow-domain allowed.test:8080/tcp --dns 203.0.113.10 -- curl -s -m 3 \
    http://other.test:8080/
  [ ! -e "$RUN/service.json" ] && ! service_running && ok "no service after run" ||
    bad "a service after run: $(cat $RUN/service.json 2>&1)"
  nothing_left "after run"
  # netcell killed at each step of a create with a domain rule (the last ones after the service
  # started), then gc: no service, record, learned file or session left.
  local at step steps=0 started=0
  for at in $(seq 40); do
    if as_user env NETCELL_FAULT_AT=$at NETCELL_FAULT_VERBOSE=1 "$NETCELL" create m$at \
         --mode private --allow-domain allowed.test --dns 203.0.113.10 >$OUT 2>&1; then
      check "create m$at: past the last step" nc_user destroy m$at
      break
    fi
    step=$(grep -o "step $at ([^)]*)" $OUT) || { bad "step $at not reached: $(head -c 200 $OUT)"
      break; }
    steps=$at
    service_running && started=$((started + 1))
    nc_user gc >$OUT 2>&1 || true
    [ ! -e "$RUN/service.json" ] && [ -z "$(ls -A "$RUN/learned" 2>/dev/null)" ] &&
      ok "kill -9 of netcell at $step, then gc: no service record, nothing in learned/" ||
      bad "after kill -9 at $step and gc: $(find $RUN -mindepth 1 | tr '\n' ' ')"
    nothing_left "kill -9 of netcell at $step, then gc"
  done
  [ "$started" -ge 1 ] && ok "$steps steps; killed after the service started at $started" ||
    bad "no step after the service started ($steps steps)"
  nothing_left "the end"
}

for g in "${GROUPS_TO_RUN[@]}"; do
  echo "== $g"
  "group_$g"
done
echo "$checks checks, $failures failed"
[ "$failures" = 0 ]

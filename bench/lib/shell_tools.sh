# shellcheck shell=bash
# The shell-driven tools (sourced by world_tool.sh). Each tool T defines T_prepare (once, not
# timed), T_setup I and T_teardown I (namespace I = 1..N, published world port 20000+I -> 80) and
# T_name I (the namespace's name under /run/netns).

# ---- classic: one `ip` / `sysctl` / `iptables` process per step, as tutorials do ----------------
# Namespaces n1..nN on bridge br0 (10.200.0.1/16); namespace I has 10.200.0.0/16 host number I+1.
classic_ip() {
  local h=$(( $1 + 1 ))
  REPLY="10.200.$(( h >> 8 )).$(( h & 255 ))"
}

classic_bridge() {
  ip link add br0 type bridge
  ip addr add 10.200.0.1/16 dev br0
  ip link set br0 up
}

ipt_prepare() {
  classic_bridge
  # Instantiate the nat table before timing starts.
  iptables -w -t nat -A POSTROUTING -s 192.0.2.255/32 -j RETURN
  iptables -w -t nat -D POSTROUTING -s 192.0.2.255/32 -j RETURN
}
ipt_name() { REPLY="n$1"; }
ipt_setup() {
  local i=$1 ip
  classic_ip "$i"
  ip=$REPLY
  ip netns add "n$i"
  ip link add "v$i" type veth peer name eth0 netns "n$i"
  ip link set "v$i" master br0 up
  ip -n "n$i" link set lo up
  ip -n "n$i" addr add "$ip/16" dev eth0
  ip -n "n$i" link set eth0 up
  ip -n "n$i" route add default via 10.200.0.1
  sysctl -qw net.ipv4.ip_forward=1
  iptables -w -t nat -A POSTROUTING -s "$ip/32" ! -o br0 -j MASQUERADE
  iptables -w -t nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL --dport $(( 20000 + i )) \
    -j DNAT --to-destination "$ip:80"
}
ipt_teardown() {
  local i=$1 ip
  classic_ip "$i"
  ip=$REPLY
  iptables -w -t nat -D POSTROUTING -s "$ip/32" ! -o br0 -j MASQUERADE
  iptables -w -t nat -D PREROUTING -p tcp -m addrtype --dst-type LOCAL --dport $(( 20000 + i )) \
    -j DNAT --to-destination "$ip:80"
  ip link del "v$i"
  ip netns del "n$i"
}

# ---- batch: the fastest shell approach: `ip -batch` per side + one `nft -f` per namespace ------
declare -a BATCH_MASQ BATCH_DNAT
batch_prepare() {
  classic_bridge
  nft -f - <<'EOF'
table ip nat {
  chain prerouting { type nat hook prerouting priority dstnat; }
  chain postrouting { type nat hook postrouting priority srcnat; }
}
EOF
}
batch_name() { REPLY="n$1"; }
batch_setup() {
  local i=$1 ip out
  classic_ip "$i"
  ip=$REPLY
  ip -batch - <<EOF
netns add n$i
link add v$i type veth peer name eth0 netns n$i
link set v$i master br0 up
EOF
  ip -n "n$i" -batch - <<EOF
link set lo up
addr add $ip/16 dev eth0
link set eth0 up
route add default via 10.200.0.1
EOF
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # -e -a echoes the rules with their handles: teardown deletes by handle.
  out=$(nft -e -a -f - <<EOF
add rule ip nat postrouting ip saddr $ip oifname != "br0" masquerade
add rule ip nat prerouting fib daddr type local tcp dport $(( 20000 + i )) dnat to $ip:80
EOF
)
  local re='postrouting .*# handle ([0-9]+).*prerouting .*# handle ([0-9]+)'
  [[ $out =~ $re ]] || { echo "batch: no rule handles in: $out" >&2; return 1; }
  BATCH_MASQ[i]=${BASH_REMATCH[1]}
  BATCH_DNAT[i]=${BASH_REMATCH[2]}
}
batch_teardown() {
  local i=$1
  nft -f - <<EOF
delete rule ip nat postrouting handle ${BATCH_MASQ[i]}
delete rule ip nat prerouting handle ${BATCH_DNAT[i]}
EOF
  ip -batch - <<EOF
link del v$i
netns del n$i
EOF
}

# ---- netcell through the CLI, one process per operation, as a script would call it -------------
cli_prepare() { :; }
cli_name() { REPLY="c$1"; }
cli_setup() {
  "$NETCELL" create "c$1" --mode private --publish "$(( 20000 + $1 )):80" >/dev/null
}
cli_teardown() {
  "$NETCELL" destroy "c$1" >/dev/null
}

# ---- netcell's CLI with and without an egress policy (issue 14) -------------------------------
# Namespaces n1..nN, each naming the stub DNS server (policy.sh); clipol with
# netcell-bench-policy's policy of namespace I (20 address rules, 5 domain rules), the same as the
# library's pol. The check (T_verify N BASE) is policy_check.sh without iperf3.
clipol0_prepare() { :; }
clipol0_name() { REPLY="n$1"; }
clipol0_setup() {
  "$NETCELL" create "n$1" --mode private --publish "$(( 20000 + $1 )):80" --dns 192.0.2.53 \
    >/dev/null
}
clipol0_teardown() { "$NETCELL" destroy "n$1" >/dev/null; }
clipol0_verify() { "$(dirname "${BASH_SOURCE[0]}")/policy_check.sh" none "$1" light "$2" 0 0; }
declare -a CLIPOL_ARGS
clipol_prepare() { mapfile -t CLIPOL_ARGS < <("$NETCELL_POLICY_BIN" --print-cli-args="$1"); }
clipol_name() { REPLY="n$1"; }
clipol_setup() {
  local -a a
  read -r -a a <<<"${CLIPOL_ARGS[$1 - 1]}"
  "$NETCELL" create "n$1" --mode private --publish "$(( 20000 + $1 )):80" --dns 192.0.2.53 \
    "${a[@]}" >/dev/null
}
clipol_teardown() { "$NETCELL" destroy "n$1" >/dev/null; }
clipol_verify() { "$(dirname "${BASH_SOURCE[0]}")/policy_check.sh" rules "$1" light "$2" 0 0; }

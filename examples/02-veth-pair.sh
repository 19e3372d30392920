#!/usr/bin/env bash
# 02 — a veth pair between the host and a namespace. netcell's private mode makes one: the host
# end (ncpN) and the namespace end (eth0) get the two addresses of a /30, and traffic flows both
# ways over the pair.
set -euo pipefail
source "$(dirname "$0")/common.sh"

trap '"$NETCELL" destroy vp >/dev/null 2>&1 || true' EXIT

say "A private namespace: netcell creates the veth with its peer directly inside the namespace."
run "$NETCELL" create vp --mode private
run "$NETCELL" info vp
info=$("$NETCELL" info vp --json)
host_if=$(jq -r .host_interface <<<"$info")
ns_addr=$(jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]' <<<"$info" | cut -d/ -f1)
gateway=$(jq -r .gateway <<<"$info")
check '[[ "$host_if" =~ ^ncp[0-9]+$ ]]' "the host end is $host_if"

say "The host end, in the world: a veth whose peer lives in another namespace."
run ip -j -d link show "$host_if" | jq -c '.[] | {ifname, kind: .linkinfo.info_kind, link_netnsid, operstate}'
kind=$(ip -j -d link show "$host_if" | jq -r '.[0].linkinfo.info_kind')
peer_ns=$(ip -j link show "$host_if" | jq -r '.[0].link_netnsid // empty')
check '[ "$kind" = veth ] && [ -n "$peer_ns" ]' "$host_if is a veth with its peer in netns id $peer_ns"
run ip -j addr show dev "$host_if" | jq -c '.[] | {ifname, addr: [.addr_info[] | "\(.local)/\(.prefixlen)"]}'
world_addr=$(ip -j addr show dev "$host_if" | jq -r '.[0].addr_info[] | select(.family == "inet") | .local')
check '[ "$world_addr" = "$gateway" ]' "the host end holds the namespace's gateway $gateway"

say "The namespace end: eth0 with the other address of the /30, default route via the host end."
run ip -n vp -j addr show dev eth0 | jq -c '.[] | {ifname, addr: [.addr_info[] | "\(.local)/\(.prefixlen)"]}'
inside_addr=$(ip -n vp -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | .local')
check '[ "$inside_addr" = "$ns_addr" ]' "eth0 holds $ns_addr"
run ip -n vp -j route | jq -c '.[]'
via=$(ip -n vp -j route show default | jq -r '.[0].gateway')
check '[ "$via" = "$gateway" ]' "the default route goes via $gateway"

say "Traffic, both ways over the pair:"
run ping -c1 -W1 "$ns_addr"
run "$NETCELL" exec vp -- ping -c1 -W1 "$gateway"
rx=$(ip -n vp -j -s link show eth0 | jq '.[0].stats64.rx.packets')
check '[ "$rx" -ge 2 ]' "eth0 counted $rx packets in: the echo request from the world and the reply from $gateway"

run "$NETCELL" destroy vp
for i in $(seq 50); do ip link show "$host_if" >/dev/null 2>&1 || break; sleep 0.1; done
check '! ip link show "$host_if" >/dev/null 2>&1' "the pair is gone with the namespace"
echo "Example 02 done."

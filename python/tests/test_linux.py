"""The binding on the Linux backend, in a throwaway world (tests/support/world.sh): a private
namespace with a published port, checked through `ip -j` and real TCP, then destroyed."""

import ipaddress
import json
import os
import socket
import subprocess
import sys

import pytest

import netcell

pytestmark = pytest.mark.skipif(
    os.environ.get("NETCELL_TEST_WORLD") != "1",
    reason="needs a throwaway world: tests/support/world.sh python3 -m pytest ...",
)

# Listens on port 80, says "ready", then answers each of two connections with a greeting.
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen()
print("ready", flush=True)
for _ in range(2):
    c, _ = s.accept()
    c.sendall(b"hello from pyweb\\n")
    c.close()
"""


def ip_json(*args):
    return json.loads(subprocess.run(["ip", "-j", *args], check=True, capture_output=True,
                                     text=True).stdout or "[]")


def addresses(*args):
    return {ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
            for link in ip_json(*args) for a in link.get("addr_info", [])}


def fetch(host, port):
    with socket.create_connection((host, port), timeout=5) as conn:
        return conn.makefile("rb").readline()


def test_private_namespace_with_a_published_port():
    mgr = netcell.NamespaceManager(backend="linux")
    assert mgr.backend == "linux"
    config = netcell.NamespaceConfig.private_network(os.getpid())
    config.name = "pyweb"
    config.port_forwards = [netcell.PortForward(8080, 80)]
    info = mgr.create(config)
    server = None
    try:
        assert (info.mode, info.backend, info.enforced) == ("private", "linux", True)
        assert info.netns_path and os.path.exists(info.netns_path)
        eth0 = next(i for i in info.interfaces if i.name == "eth0")
        address, address6 = eth0.addresses  # dual stack
        # What the kernel has is what netcell reports: inside, and on the veth's host end.
        inside = addresses("-n", "pyweb", "addr", "show", "dev", "eth0")
        assert address in inside and address6 in inside
        host_side = addresses("addr", "show", "dev", info.host_interface)
        assert info.gateway in {a.ip for a in host_side}
        # The IPv6 gateway is the host's, on lo, one for every private namespace.
        assert info.gateway6 in {a.ip for a in addresses("addr", "show", "dev", "lo")}

        server = subprocess.Popen(["ip", "netns", "exec", "pyweb", sys.executable, "-c", SERVER],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        assert mgr.find_by_pid(server.pid).name == "pyweb"
        # Through the published port on the host, and straight to the namespace's address.
        assert fetch("127.0.0.1", 8080) == b"hello from pyweb\n"
        assert fetch(str(address.ip), 80) == b"hello from pyweb\n"
        assert server.wait(timeout=5) == 0
        assert mgr.stats("pyweb").total.rx_bytes > 0
    finally:
        if server and server.poll() is None:
            server.kill()
            server.wait()
        mgr.destroy("pyweb")

    assert not mgr.exists("pyweb")
    with pytest.raises(netcell.Error) as missing:
        mgr.info("pyweb")
    assert missing.value.code == netcell.ErrorCode.NOT_FOUND
    assert "pyweb" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                         text=True).stdout
    assert ip_json("link", "show") and not any(
        link["ifname"] == info.host_interface for link in ip_json("link", "show"))
    with pytest.raises(OSError):
        fetch("127.0.0.1", 8080)


TOPOLOGY = {
    "name": "pytopo",
    "namespaces": {"left": {"mode": "full"}, "right": {"mode": "full"}},
    "links": [{"ends": [{"namespace": "left", "device": "to-right", "address": "10.0.1.1/24"},
                        {"namespace": "right", "device": "to-left", "address": "10.0.1.2/24"}]}],
}


def test_topology_up_and_down():
    mgr = netcell.NamespaceManager(backend="linux")
    topology = netcell.Topology.from_dict(TOPOLOGY)
    with mgr.topology(topology) as report:
        assert report.changed > 0
        assert {i.name for i in mgr.list()} == {"left", "right"}
        # The kernel has the link and its addresses, and traffic crosses it.
        assert ipaddress.ip_interface("10.0.1.1/24") in addresses("-n", "left", "addr", "show",
                                                                  "dev", "to-right")
        ping = mgr.run("left", ["ping", "-c", "1", "-W", "2", "10.0.1.2"], capture_output=True,
                       timeout=10)
        assert ping.returncode == 0, ping.stdout
        assert mgr.up(topology).changed == 0
    assert mgr.list() == []
    assert {e["name"] for e in ip_json("netns", "list")} == set()


def test_detached_spawn_writes_its_output_file(tmp_path):
    mgr = netcell.NamespaceManager(backend="linux")
    output = tmp_path / "out.log"
    with mgr.namespace(netcell.NamespaceConfig.full_isolation(os.getpid(), name="pydetach")):
        child = mgr.spawn("pydetach", ["sh", "-c", "ls /sys/class/net; echo err >&2"],
                          detach=True, output_path=str(output))
        assert child.wait(timeout=10) == 0
    assert output.read_text().split() == ["lo", "err"]

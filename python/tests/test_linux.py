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
        (address,) = eth0.addresses
        # What the kernel has is what netcell reports: inside, and on the veth's host end.
        assert address in addresses("-n", "pyweb", "addr", "show", "dev", "eth0")
        host_side = addresses("addr", "show", "dev", info.host_interface)
        assert info.gateway in {a.ip for a in host_side}

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

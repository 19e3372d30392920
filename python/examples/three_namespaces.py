"""Exercise 2: three namespaces with controlled access.

Namespaces a, b and c on one bridged network. a and b reach each other; c has an egress policy
that denies everything but a's port 8000, so c reaches a and not b. Then the policy is lifted on
the live namespace and c reaches b too. Run as root (policies need netcell's host service,
netcell-service: installed, or named by $NETCELL_SERVICE):

    python3 python/examples/three_namespaces.py
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import sys
from typing import Any, Callable, Dict, Optional

import netcell

NETWORK = "pylab"
SUBNET = "10.77.0.0/24"
PORT = 8000

# Answers every connection with the namespace's name.
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[1].encode())
    c.close()
"""

# Exits 0 and prints the answer when the address answers within 3 seconds, else exits 1.
CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
        print(c.recv(100).decode())
except OSError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
"""


def reaches(mgr: netcell.NamespaceManager, source: str, info: netcell.NamespaceInfo) -> bool:
    """Whether source connects to info's server, which answers with its name."""
    done = mgr.run(source, [sys.executable, "-c", CLIENT, str(info.address), str(PORT)],
                   capture_output=True, timeout=20)
    return done.returncode == 0 and done.stdout.decode().strip() == info.name


def start_server(mgr: netcell.NamespaceManager, stack: contextlib.ExitStack, name: str) -> None:
    """Starts name's server (ended with the stack) and waits, at most 10 s, until it listens."""
    read_end, write_end = os.pipe()
    try:
        stack.enter_context(
            mgr.spawn(name, [sys.executable, "-c", SERVER, name, str(PORT)], stdout=write_end))
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as said, selectors.DefaultSelector() as selector:
        selector.register(said, selectors.EVENT_READ)
        if not selector.select(timeout=10) or said.readline().strip() != "ready":
            raise RuntimeError(f"the server in {name} did not start")


def main(mgr: netcell.NamespaceManager,
         observe: Optional[Callable[[Dict[str, netcell.NamespaceInfo]], None]] = None
         ) -> Dict[str, Any]:
    mgr.create_network(NETWORK, SUBNET)
    try:
        with contextlib.ExitStack() as stack:
            nodes: Dict[str, netcell.NamespaceInfo] = {}
            for name in ("a", "b"):
                config = netcell.NamespaceConfig.bridged(os.getpid(), NETWORK, name=name)
                nodes[name] = stack.enter_context(mgr.namespace(config))
            only_a = netcell.EgressPolicy("deny", allow=[f"{nodes['a'].address}:{PORT}/tcp"])
            config = netcell.NamespaceConfig.bridged(os.getpid(), NETWORK, name="c", egress=only_a)
            nodes["c"] = stack.enter_context(mgr.namespace(config))
            for name in nodes:
                start_server(mgr, stack, name)
            if observe:
                observe(nodes)
            pairs = [("a", "b"), ("b", "a"), ("c", "a"), ("c", "b")]
            result: Dict[str, Any] = {
                f"{src}->{dst}": reaches(mgr, src, nodes[dst]) for src, dst in pairs}
            counters = mgr.egress_counters("c")
            result["c allowed to a (packets)"] = counters.rules[0].packets
            mgr.set_egress("c", None)
            result["c->b without the policy"] = reaches(mgr, "c", nodes["b"])
    finally:
        mgr.remove_network(NETWORK)
    return result


if __name__ == "__main__":
    print(json.dumps(main(netcell.NamespaceManager())))

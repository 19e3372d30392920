"""Exercise 3: a bandwidth limit, measured.

A private namespace whose upload (egress) is limited to 16 Mbit/s; a server inside sends 4 MB to
a client on the host through a published port, and the host times the transfer: it takes about
two seconds, the rate the limit allows. Run as root:

    python3 python/examples/bandwidth.py
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any, Callable, Dict, Optional

import netcell

NAME = "pyrate"
LIMIT = "16mbit"
SIZE = 4 * 1000 * 1000
HOST_PORT = 8082
SERVER_PORT = 9000

# Sends SIZE bytes to one connection, then exits.
SENDER = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {SERVER_PORT}))
s.listen()
c, _ = s.accept()
chunk = bytes(65536)
left = {SIZE}
while left > 0:
    left -= c.send(chunk[:min(left, len(chunk))])
c.close()
"""


def connect(port: int, deadline_s: float = 10.0) -> socket.socket:
    """Connects to 127.0.0.1:port, retrying while the server is still starting."""
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


def receive_all(conn: socket.socket, limit_s: float = 30.0) -> int:
    """Reads until the sender closes (at most limit_s seconds); the byte count."""
    received = 0
    give_up = time.monotonic() + limit_s
    while time.monotonic() < give_up:
        data = conn.recv(1 << 16)
        if not data:
            break
        received += len(data)
    return received


def main(mgr: netcell.NamespaceManager,
         observe: Optional[Callable[[netcell.NamespaceInfo], None]] = None) -> Dict[str, Any]:
    config = netcell.NamespaceConfig.private_network(
        os.getpid(), name=NAME, egress_bps=LIMIT,
        port_forwards=[netcell.PortForward(HOST_PORT, SERVER_PORT)])
    with mgr.namespace(config) as info:
        with mgr.spawn(NAME, [sys.executable, "-c", SENDER]) as sender:
            with connect(HOST_PORT) as conn:
                start = time.monotonic()
                received = receive_all(conn)
                seconds = time.monotonic() - start
            sender.wait(timeout=10)
        if observe:
            observe(info)
        stats = mgr.stats(NAME)
    return {"namespace": info.name, "limit_bps": info.egress_bps, "bytes": received,
            "seconds": seconds, "rate_bps": received * 8 / seconds,
            "tx_bytes": stats.total.tx_bytes}


if __name__ == "__main__":
    print(json.dumps(main(netcell.NamespaceManager())))

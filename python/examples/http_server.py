"""Exercise 1: an HTTP server in a private namespace, published on the host's localhost.

``python3 -m http.server`` runs inside a private namespace; netcell publishes its port 8000 as the
host's port 8080, and the host fetches the page from http://127.0.0.1:8080/. Run as root:

    python3 python/examples/http_server.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from typing import Any, Callable, Dict, Optional

import netcell

NAME = "pyhttp"
HOST_PORT = 8080
SERVER_PORT = 8000


def fetch(url: str, deadline_s: float = 10.0) -> bytes:
    """GETs url, retrying while the server is still starting (at most deadline_s seconds)."""
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


def main(mgr: netcell.NamespaceManager,
         observe: Optional[Callable[[netcell.NamespaceInfo], None]] = None) -> Dict[str, Any]:
    config = netcell.NamespaceConfig.private_network(
        os.getpid(), name=NAME, port_forwards=[netcell.PortForward(HOST_PORT, SERVER_PORT)])
    with tempfile.TemporaryDirectory() as docroot, mgr.namespace(config) as info:
        with open(os.path.join(docroot, "index.html"), "w") as page:
            page.write(f"hello from {NAME}\n")
        with open(os.devnull, "w") as quiet, mgr.spawn(
                NAME, [sys.executable, "-m", "http.server", str(SERVER_PORT),
                       "--bind", "0.0.0.0", "--directory", docroot],
                stdout=quiet, stderr=quiet) as server:
            body = fetch(f"http://127.0.0.1:{HOST_PORT}/index.html")
            if observe:
                observe(info)
            found = mgr.find_by_pid(server.pid).name
        return {"namespace": info.name, "address": str(info.address), "body": body.decode(),
                "server_in": found}


if __name__ == "__main__":
    print(json.dumps(main(netcell.NamespaceManager())))

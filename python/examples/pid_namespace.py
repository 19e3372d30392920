"""Exercise 4: a process in a new PID namespace and a new network namespace.

A fully isolated namespace (only ``lo``), and a command spawned in it with a PID namespace of its
own: it sees itself as PID 1, no other process, and no network device but ``lo``. Run as root:

    python3 python/examples/pid_namespace.py
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, Optional

import netcell

NAME = "pypid"

# What the command reports about itself, from inside.
PROBE = """
import json, os
print(json.dumps({
    "pid": os.getpid(),
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "devices": sorted(os.listdir("/sys/class/net")),
}))
"""


def main(mgr: netcell.NamespaceManager,
         observe: Optional[Callable[[netcell.NamespaceInfo], None]] = None) -> Dict[str, Any]:
    config = netcell.NamespaceConfig.full_isolation(os.getpid(), name=NAME)
    with mgr.namespace(config) as info:
        done = mgr.run(NAME, [sys.executable, "-c", PROBE], new_pid_namespace=True,
                       capture_output=True, timeout=30, check=True)
        seen: Dict[str, Any] = json.loads(done.stdout)
        if observe:
            observe(info)
    return {"namespace": info.name, "interfaces": [i.name for i in info.interfaces], **seen}


if __name__ == "__main__":
    print(json.dumps(main(netcell.NamespaceManager())))

#!/usr/bin/env python3
"""Drives the CNI reference plugins or netavark the way a container runtime does, from one
long-lived process (so interpreter start-up is not counted), inside a throwaway world.

  peers.py cni|ncni|netavark|clirt N CSV SUMMARY SETUP_CAP_S TEARDOWN_CAP_S [VERIFY_COMMAND]

cni: `ip netns add`, then the chain loopback -> bridge (cni0, isGateway, ipMasq, hairpin,
host-local IPAM 10.201.0.0/16) -> portmap (runtimeConfig.portMappings, prevResult = the bridge's
result); every plugin exec'd with CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH and its
config on stdin (cniVersion 1.0.0). DEL runs the chain in reverse with prevResult, then
`ip netns del`.
ncni: netcell's CNI plugin ($NETCELL_CNI) driven exactly the same way in its place: `ip netns add`,
loopback, then netcell (mode private, the same runtimeConfig.portMappings); DEL in reverse, then
`ip netns del`. For both, the CSV's add_ms / del_ms are the main plugins' own share of a setup and
a teardown (cni: bridge with its host-local, then portmap; ncni: netcell), without `ip netns` and
loopback, which the two share.
netavark: `ip netns add`, then `netavark --config DIR setup /run/netns/NAME` with podman's
network-options JSON on stdin (bridge podman0, 10.202.0.0/16, static IP, one port mapping);
teardown is `netavark teardown` with the same JSON, then `ip netns del`.
clirt: netcell's CLI ($NETCELL) started by this same driver, the way it starts netavark and the
CNI plugins: `netcell create rI --mode private --publish 20000+I:80`, then `netcell destroy rI`.
Namespace I (1..N) publishes world port 20000+I -> 80. VERIFY_COMMAND runs (untimed, through the
shell) while all namespaces exist; $NAME in it is replaced by the first namespace's name.
"""
import json
import os
import resource
import subprocess
import sys
import time

CNI_PATH = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"
NV_CONFIG = "/run/netavark-bench"


def run(argv, stdin=None, env=None):
    p = subprocess.run(argv, input=stdin, env=env, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.decode().strip()}"
                           f" {p.stdout.decode().strip()}")
    return p.stdout


class Cni:
    prefix = "p"

    def __init__(self):
        self.results = {}

    def plugin(self, command, name, ifname, conf):
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": name,
            "CNI_NETNS": f"/run/netns/{name}",
            "CNI_IFNAME": ifname,
            "CNI_PATH": CNI_PATH,
        }
        out = run([self.binary(conf)], json.dumps(conf).encode(), env)
        return json.loads(out) if out.strip() else None

    @staticmethod
    def binary(conf):
        return f"{CNI_PATH}/{conf['type']}"

    @staticmethod
    def confs(port):
        base = {"cniVersion": "1.0.0", "name": "bench"}
        loopback = dict(base, type="loopback")
        bridge = dict(base, type="bridge", bridge="cni0", isGateway=True, ipMasq=True,
                      hairpinMode=True,
                      ipam={"type": "host-local", "ranges": [[{"subnet": "10.201.0.0/16"}]],
                            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/run/cni-ipam"})
        portmap = dict(base, type="portmap", capabilities={"portMappings": True}, snat=True,
                       runtimeConfig={"portMappings": [
                           {"hostPort": port, "containerPort": 80, "protocol": "tcp"}]})
        return loopback, bridge, portmap

    def setup(self, i):
        name = f"{self.prefix}{i}"
        run(["ip", "netns", "add", name])
        loopback, bridge, portmap = self.confs(20000 + i)
        self.plugin("ADD", name, "lo", loopback)
        t = time.perf_counter()
        result = self.plugin("ADD", name, "eth0", bridge)
        result = self.plugin("ADD", name, "eth0", dict(portmap, prevResult=result))
        self.add_ms = (time.perf_counter() - t) * 1000
        self.results[i] = result

    def teardown(self, i):
        name = f"{self.prefix}{i}"
        loopback, bridge, portmap = self.confs(20000 + i)
        result = self.results.pop(i)
        t = time.perf_counter()
        self.plugin("DEL", name, "eth0", dict(portmap, prevResult=result))
        self.plugin("DEL", name, "eth0", dict(bridge, prevResult=result))
        self.del_ms = (time.perf_counter() - t) * 1000
        self.plugin("DEL", name, "lo", loopback)
        run(["ip", "netns", "del", name])


class NetcellCni(Cni):
    prefix = "k"

    @staticmethod
    def binary(conf):
        return os.environ["NETCELL_CNI"] if conf["type"] == "netcell" else Cni.binary(conf)

    @staticmethod
    def netcell_conf(port):
        return {"cniVersion": "1.0.0", "name": "bench", "type": "netcell", "mode": "private",
                "capabilities": {"portMappings": True},
                "runtimeConfig": {"portMappings": [
                    {"hostPort": port, "containerPort": 80, "protocol": "tcp"}]}}

    def setup(self, i):
        name = f"{self.prefix}{i}"
        run(["ip", "netns", "add", name])
        loopback = self.confs(20000 + i)[0]
        self.plugin("ADD", name, "lo", loopback)
        t = time.perf_counter()
        self.results[i] = self.plugin("ADD", name, "eth0", self.netcell_conf(20000 + i))
        self.add_ms = (time.perf_counter() - t) * 1000

    def teardown(self, i):
        name = f"{self.prefix}{i}"
        loopback = self.confs(20000 + i)[0]
        result = self.results.pop(i)
        t = time.perf_counter()
        self.plugin("DEL", name, "eth0", dict(self.netcell_conf(20000 + i), prevResult=result))
        self.del_ms = (time.perf_counter() - t) * 1000
        self.plugin("DEL", name, "lo", loopback)
        run(["ip", "netns", "del", name])


class Netavark:
    prefix = "a"
    network_id = "6f" * 32

    def options(self, i):
        h = i + 1  # host number in 10.202.0.0/16; .1 is the gateway
        return json.dumps({
            "container_id": f"{i:064x}",
            "container_name": f"{self.prefix}{i}",
            "port_mappings": [{"host_ip": "", "container_port": 80, "host_port": 20000 + i,
                               "range": 1, "protocol": "tcp"}],
            "networks": {"bench": {"static_ips": [f"10.202.{h >> 8}.{h & 255}"],
                                   "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": self.network_id, "driver": "bridge",
                "network_interface": "podman0",
                "subnets": [{"subnet": "10.202.0.0/16", "gateway": "10.202.0.1"}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": False,
                "ipam_options": {"driver": "host-local"}}},
        }).encode()

    def setup(self, i):
        name = f"{self.prefix}{i}"
        run(["ip", "netns", "add", name])
        run([NETAVARK, "--config", NV_CONFIG, "setup", f"/run/netns/{name}"], self.options(i))

    def teardown(self, i):
        name = f"{self.prefix}{i}"
        run([NETAVARK, "--config", NV_CONFIG, "teardown", f"/run/netns/{name}"], self.options(i))
        run(["ip", "netns", "del", name])


class NetcellCli:
    prefix = "r"

    def __init__(self):
        self.netcell = os.environ["NETCELL"]

    def setup(self, i):
        run([self.netcell, "create", f"{self.prefix}{i}", "--mode", "private", "--publish",
             f"{20000 + i}:80"])

    def teardown(self, i):
        run([self.netcell, "destroy", f"{self.prefix}{i}"])


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main():
    if len(sys.argv) < 7:
        print(__doc__, file=sys.stderr)
        return 2
    tool, n, csv_path, summary_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    setup_cap, teardown_cap = float(sys.argv[5]), float(sys.argv[6])
    verify_command = sys.argv[7] if len(sys.argv) > 7 else ""
    driver = {"cni": Cni, "ncni": NetcellCni, "netavark": Netavark, "clirt": NetcellCli}[tool]()
    os.makedirs(NV_CONFIG, exist_ok=True)

    setup_ms, teardown_ms, error = [], [], None
    add_ms, del_ms = [], []  # the main plugins' share (cni, ncni)
    cpu0, start = children_cpu(), time.monotonic()
    for i in range(1, n + 1):
        if time.monotonic() - start > setup_cap:
            break
        t = time.perf_counter()
        try:
            driver.setup(i)
        except RuntimeError as e:
            error = f"setup {i}: {e}"
            break
        setup_ms.append((time.perf_counter() - t) * 1000)
        add_ms.append(getattr(driver, "add_ms", -1))
    setup_cpu, setup_wall = children_cpu() - cpu0, time.monotonic() - start

    verify_status = -1
    if verify_command and setup_ms:
        verify_status = subprocess.run(
            verify_command.replace("$NAME", f"{driver.prefix}1"), shell=True).returncode

    cpu1, start = children_cpu(), time.monotonic()
    for i in range(1, len(setup_ms) + 1):
        if time.monotonic() - start > teardown_cap:
            break
        t = time.perf_counter()
        try:
            driver.teardown(i)
        except RuntimeError as e:
            error = error or f"teardown {i}: {e}"
            break
        teardown_ms.append((time.perf_counter() - t) * 1000)
        del_ms.append(getattr(driver, "del_ms", -1))
    teardown_cpu, teardown_wall = children_cpu() - cpu1, time.monotonic() - start

    with open(csv_path, "w") as f:
        f.write("i,setup_ms,teardown_ms,add_ms,del_ms\n")
        for i, s in enumerate(setup_ms):
            down = teardown_ms[i] if i < len(teardown_ms) else -1
            dl = del_ms[i] if i < len(del_ms) else -1
            f.write(f"{i + 1},{s:.4f},{down:.4f},{add_ms[i]:.4f},{dl:.4f}\n")
    with open(summary_path, "w") as f:
        json.dump({"requested": n, "created": len(setup_ms), "destroyed": len(teardown_ms),
                   "setup_wall_s": setup_wall, "teardown_wall_s": teardown_wall,
                   "setup_cpu_s": setup_cpu, "teardown_cpu_s": teardown_cpu,
                   "verify_status": verify_status, "error": error}, f)
    if error:
        print(f"peers.py {tool}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

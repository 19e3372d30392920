#!/usr/bin/python3
"""netcell-cni driven like a CNI runtime (CNI_* environment, configuration on stdin), inside a
throwaway world (tests/support/world.sh). Results are read back from the kernel (`ip -j`, `nft -j`,
real TCP connections) and the run dir, never only from what the plugin says.

    world.sh conformance.py PLUGIN NETCELL_CLI RESPONDER
"""
import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time

PLUGIN, CLI, RESPONDER = sys.argv[1], sys.argv[2], sys.argv[3]
RUN_DIR = "/run/netcell"
VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
CNI_PATH = "/usr/lib/cni"
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def sh(*argv, ok=True, timeout=20):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        raise RuntimeError(f"{argv}: {r.returncode}: {r.stderr.strip()}")
    return r


def ipj(*argv, ns=None):
    pre = ["ip", "-j"] + (["-n", ns] if ns else [])
    out = sh(*pre, *argv).stdout
    return json.loads(out) if out.strip() else []


def conf(version="1.0.0", name="cninet", **extra):
    c = {"cniVersion": version, "name": name, "type": "netcell"}
    c.update(extra)
    return c


def plugin(verb, config, cid="c1", netns=None, ifname="eth0", args=None, path=CNI_PATH,
           env_drop=(), binary=PLUGIN, raw=None):
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": verb, "CNI_CONTAINERID": cid,
           "CNI_IFNAME": ifname, "CNI_PATH": path}
    if netns is not None:
        env["CNI_NETNS"] = netns
    if args is not None:
        env["CNI_ARGS"] = args
    for k in env_drop:
        env.pop(k, None)
    data = raw if raw is not None else json.dumps(config).encode()
    r = subprocess.run([binary], input=data, env=env, capture_output=True, timeout=30)
    out = r.stdout.decode()
    try:
        parsed = json.loads(out) if out.strip() else None
    except ValueError:
        parsed = "not json: " + out
    return r.returncode, parsed


def netns(name):
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    return "/run/netns/" + name


def run_dir_files():
    """The run dir's files but its lock and the private IPv6 pool's prefix, which netcell makes
    once per run dir (the first dual-stack attachment) and keeps on purpose: every later one
    takes its /64 from the same ULA /48 (docs/ARCHITECTURE.md)."""
    out = []
    for root, _, files in os.walk(RUN_DIR):
        out += [os.path.join(root, f) for f in files
                if f != "lock" and not (root == RUN_DIR and f == "private-subnet6")]
    return sorted(out)


def nft_ruleset():
    # Counters change with traffic; everything else must not.
    text = sh("nft", "-j", "list", "ruleset").stdout
    j = json.loads(text)
    for item in j.get("nftables", []):
        for v in item.values():
            if isinstance(v, dict):
                v.pop("handle", None)

    def scrub(x):
        if isinstance(x, dict):
            return {k: scrub(v) for k, v in x.items() if k not in ("bytes", "packets")}
        if isinstance(x, list):
            return [scrub(v) for v in x]
        return x
    return json.dumps(scrub(j), sort_keys=True)


def addresses(ns=None):
    """Each link's name, up or not, and its addresses, but IPv6 link-local ones (which the
    kernel adds by itself while a test runs)."""
    out = []
    for l in ipj("addr", ns=ns):
        addrs = sorted(f"{a['local']}/{a['prefixlen']}" for a in l.get("addr_info", [])
                       if not a["local"].startswith("fe80:"))
        out.append((l["ifname"], "UP" in l["flags"], l.get("address"), addrs))
    return sorted(out)


def routes(ns=None):
    return sorted(json.dumps(r, sort_keys=True) for r in ipj("route", ns=ns))


def state():
    per_ns = {}
    for ns in [n["name"] for n in ipj("netns", "list")]:
        per_ns[ns] = (addresses(ns), routes(ns))
    return {"links": sorted(l["ifname"] for l in ipj("link")), "addr": addresses(),
            "routes": routes(), "nft": nft_ruleset(), "files": run_dir_files(),
            "netns": per_ns}


def differs(before, after):
    """What differs between two states, for the failure message."""
    out = []
    for k in before:
        if before[k] != after[k]:
            out.append(f"{k}: {json.dumps(before[k])[:300]} -> {json.dumps(after[k])[:300]}")
    return "; ".join(out)


def inner_addrs(ns, ifname="eth0"):
    return [a["local"] + "/" + str(a["prefixlen"]) for l in ipj("addr", "show", ns=ns)
            if l["ifname"] == ifname for a in l.get("addr_info", []) if a["family"] == "inet"]


def has_default_via(ns, gw):
    return any(r.get("dst") == "default" and r.get("gateway") == gw for r in ipj("route", ns=ns))


def netcell_list():
    return json.loads(sh(CLI, "list", "--json").stdout)


def is_error(rc, out, code=None):
    good = rc != 0 and isinstance(out, dict) and isinstance(out.get("code"), int) \
        and isinstance(out.get("msg"), str) and out.get("cniVersion") in VERSIONS
    return good and (code is None or out["code"] == code)


def wait_gone(link, seconds=5):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if link not in [l["ifname"] for l in ipj("link")]:
            return True
        time.sleep(0.05)
    return False


def tcp_answer(ns, host, port):
    """Connects from namespace `ns` (None: the world) and returns what the server sends."""
    cmd = ["nc"] + (["-6"] if ":" in host else []) + ["-w", "2", "-N", host, str(port)]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    r = subprocess.run(cmd, input=b"", capture_output=True, timeout=10)
    return r.stdout.decode().strip()


@contextlib.contextmanager
def serving(ns, port, text, bind="0.0.0.0", log=None):
    """netcell-responder inside `ns` on `bind` (IPv4 or IPv6) while the block runs, appending
    each client's address to `log` if given (it ends by itself after 120 s; the test ends it by
    its pid)."""
    argv = ["ip", "netns", "exec", ns, RESPONDER, bind, str(port), text] + ([log] if log else [])
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        yield
    finally:
        p.kill()
        p.wait()


# --- the world: "the internet" is a namespace wan with TEST-NET addresses ---------------------
def make_wan():
    netns("wan")
    sh("ip", "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", "wan")
    sh("ip", "addr", "add", "203.0.113.1/24", "dev", "wan0")
    sh("ip", "link", "set", "wan0", "up")
    sh("ip", "-n", "wan", "addr", "add", "203.0.113.2/24", "dev", "eth0")
    sh("ip", "-n", "wan", "link", "set", "eth0", "up")
    sh("ip", "route", "add", "default", "via", "203.0.113.2")
    # IPv6 (2001:db8::/32, documentation): the world 2001:db8:1::1, the wan 2001:db8:1::2.
    sh("ip", "addr", "add", "2001:db8:1::1/64", "dev", "wan0", "nodad")
    sh("ip", "-n", "wan", "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad")
    sh("ip", "-6", "route", "add", "default", "via", "2001:db8:1::2")
    for _ in range(50):  # both ends' link-local addresses past DAD (at most 5 s)
        if not (ipj("-6", "addr", "show", "dev", "wan0", "tentative") or
                ipj("-6", "addr", "show", "dev", "eth0", "tentative", ns="wan")):
            break
        time.sleep(0.1)


def test_version():
    before = state()
    for v in VERSIONS + ["0.2.0"]:
        rc, out = plugin("VERSION", {"cniVersion": v})
        check(rc == 0 and out.get("supportedVersions") == VERSIONS, f"VERSION {v}: {out}")
    # podman's form: every other variable a dummy.
    env = {"CNI_COMMAND": "VERSION", "CNI_IFNAME": "dummy", "CNI_NETNS": "dummy",
           "CNI_PATH": "dummy"}
    r = subprocess.run([PLUGIN], input=b'{"cniVersion":"1.0.0"}', env=env, capture_output=True)
    check(r.returncode == 0 and json.loads(r.stdout)["cniVersion"] == "1.0.0", "VERSION podman")
    after = state()
    check(after == before, "VERSION touched no state: " + differs(before, after))


def test_lifecycle_every_version():
    for i, v in enumerate(VERSIONS):
        ns = f"lc{i}"
        path = netns(ns)
        before = state()
        cid = f"life{i}"
        rc, res = plugin("ADD", conf(v), cid=cid, netns=path)
        check(rc == 0 and isinstance(res, dict), f"{v} ADD: {res}")
        if rc != 0:
            continue
        check(res["cniVersion"] == v, f"{v}: result version {res.get('cniVersion')}")
        ip = res["ips"][0]
        check(("version" in ip) == (v < "1.0.0"), f"{v}: ips version field {ip}")
        iface = res["interfaces"][ip["interface"]]
        check(iface["name"] == "eth0" and iface["sandbox"] == path, f"{v}: interface {iface}")
        check(inner_addrs(ns) == [ip["address"]], f"{v}: kernel has {inner_addrs(ns)}")
        check(has_default_via(ns, ip["gateway"]), f"{v}: default route via {ip['gateway']}")
        host = res["interfaces"][0]["name"]
        check(host in [l["ifname"] for l in ipj("link")], f"{v}: host end {host}")
        listed = [n for n in netcell_list() if n.get("cni", {}).get("container_id") == cid]
        check(len(listed) == 1 and listed[0]["cni"]["ifname"] == "eth0"
              and listed[0]["cni"]["network"] == "cninet", f"{v}: netcell list {listed}")
        if listed:
            info = sh(CLI, "info", listed[0]["name"]).stdout
            check(cid in info and "eth0" in info, f"{v}: netcell info shows the attachment")
            stats = json.loads(sh(CLI, "stats", listed[0]["name"], "--json").stdout)
            check(any(s["name"] == "eth0" for s in stats["interfaces"]), f"{v}: stats {stats}")
        prev = dict(conf(v), prevResult=res)
        rc, out = plugin("CHECK", prev, cid=cid, netns=path)
        if v >= "0.4.0":
            check(rc == 0 and out is None, f"{v}: CHECK {out}")
        else:
            check(is_error(rc, out, 1), f"{v}: CHECK refused before 0.4.0: {out}")
        rc, out = plugin("DEL", prev, cid=cid, netns=path)
        check(rc == 0 and out is None, f"{v}: DEL {out}")
        check(wait_gone(host), f"{v}: host end gone")
        after = state()
        check(after == before, f"{v}: DEL left the world as it was: {differs(before, after)}")
        rc, out = plugin("DEL", prev, cid=cid, netns=path)
        check(rc == 0 and out is None, f"{v}: second DEL {out}")
        sh("ip", "netns", "del", ns)


def test_check_detects_breakage():
    path = netns("chk")
    rc, res = plugin("ADD", conf("1.1.0"), cid="chk", netns=path)
    check(rc == 0, f"ADD for CHECK: {res}")
    prev = dict(conf("1.1.0"), prevResult=res)
    check(plugin("CHECK", prev, cid="chk", netns=path)[0] == 0, "CHECK passes first")
    rc, out = plugin("CHECK", prev, cid="other", netns=path)
    check(is_error(rc, out, 3), f"CHECK of an unknown container: {out}")
    rc, out = plugin("CHECK", conf("1.1.0"), cid="chk", netns=path)
    check(is_error(rc, out), f"CHECK without prevResult: {out}")
    sh("ip", "-n", "chk", "route", "del", "default")
    rc, out = plugin("CHECK", prev, cid="chk", netns=path)
    check(is_error(rc, out) and "route" in out["msg"], f"CHECK sees the route missing: {out}")
    sh("ip", "-n", "chk", "route", "add", "default", "via", res["ips"][0]["gateway"])
    sh("ip", "-n", "chk", "addr", "flush", "dev", "eth0")
    rc, out = plugin("CHECK", prev, cid="chk", netns=path)
    check(is_error(rc, out) and "address" in out["msg"], f"CHECK sees the address missing: {out}")
    addr = res["ips"][0]["address"]
    # Both families' addresses back (the flush took them and the default routes with them).
    for ip in res["ips"]:
        family = "-6" if ":" in ip["address"] else "-4"
        sh("ip", "-n", "chk", family, "addr", "add", ip["address"], "dev", "eth0", "nodad")
        sh("ip", "-n", "chk", family, "route", "replace", "default", "via", ip["gateway"])
    rc, out = plugin("CHECK", prev, cid="chk", netns=path)
    check(rc == 0, f"CHECK passes with them back: {out}")
    # netcell's host state: the namespace's anti-spoofing element, gone from the table.
    element = f'{{ "{res["interfaces"][0]["name"]}" . {addr.split("/")[0]} }}'
    sh("nft", "delete", "element", "ip", "netcell", "src_ok", element)
    rc, out = plugin("CHECK", prev, cid="chk", netns=path)
    check(is_error(rc, out) and "src_ok" in out["msg"],
          f"CHECK sees the firewall element missing: {out}")
    sh("nft", "add", "element", "ip", "netcell", "src_ok", element)
    check(plugin("CHECK", prev, cid="chk", netns=path)[0] == 0, "CHECK passes with it back too")
    sh("ip", "link", "set", res["interfaces"][0]["name"], "down")
    check(plugin("DEL", prev, cid="chk", netns=path)[0] == 0, "DEL after CHECK")
    sh("ip", "netns", "del", "chk")


def test_del_without_add_and_gone_netns():
    before = state()
    rc, out = plugin("DEL", conf(), cid="never", netns="/run/netns/never")
    check(rc == 0 and out is None, f"DEL of what never was: {out}")
    rc, out = plugin("DEL", conf(), cid="never", env_drop=("CNI_NETNS",))
    check(rc == 0 and out is None, f"DEL without CNI_NETNS: {out}")
    check(state() == before, "DEL of nothing changed nothing")
    path = netns("gone")
    rc, res = plugin("ADD", conf(), cid="gone", netns=path)
    check(rc == 0, f"ADD before the netns goes: {res}")
    sh("ip", "netns", "del", "gone")
    check(wait_gone(res["interfaces"][0]["name"]), "the kernel removed the veth with the netns")
    rc, out = plugin("DEL", conf(), cid="gone", netns=path)
    check(rc == 0 and out is None, f"DEL after the netns is gone: {out}")
    check(state() == before, "DEL after the netns went left nothing")


def test_hostile():
    path = netns("hostile")
    before = state()
    huge = json.dumps(conf(args={"pad": "x" * (2 << 20)})).encode()
    cases = [
        ("bad JSON", dict(raw=b'{"cniVersion":"1.0.0",'), 6),
        ("not an object", dict(raw=b'[]'), 6),
        ("huge input", dict(raw=huge), 6),
        ("binary junk", dict(raw=bytes(range(256)) * 64), 6),
        ("unknown version", dict(config=conf("9.0.0")), 1),
        ("no version", dict(config={"name": "n", "type": "netcell"}), 1),
        ("no name", dict(config={"cniVersion": "1.0.0", "type": "netcell"}), 7),
        ("bad name", dict(config=conf(name="../x")), 7),
        ("wrong type of field", dict(config=conf(mtu="big")), 7),
        ("unknown mode", dict(config=conf(mode="host")), 7),
        ("bridged without subnet", dict(config=conf(mode="bridged")), 7),
        ("delegated ipam in mode private", dict(config=conf(ipam={"type": "host-local"})), 7),
        ("ipam plugin outside CNI_PATH", dict(config=conf(mode="bridged", subnet="10.78.0.0/24",
                                                          ipam={"type": "../../bin/sh"})), 7),
        ("ipam without a type", dict(config=conf(mode="bridged", subnet="10.78.0.0/24",
                                                 ipam={"subnet": "10.78.0.0/24"})), 7),
        ("ipam plugin not installed", dict(config=conf(mode="bridged", subnet="10.78.0.0/24",
                                                       ipam={"type": "nosuchipam"})), 7),
        ("ipam's error passed on", dict(config=conf(mode="bridged", subnet="10.78.0.0/24",
                                                    ipam={"type": "host-local"})), None),
        ("runtimeConfig.dns server not an address",
         dict(config=conf(runtimeConfig={"dns": {"servers": ["resolver"]}})), 7),
        ("bad port mapping", dict(config=conf(runtimeConfig={"portMappings": [{"hostPort": 99999,
                                                                                "containerPort": 1}]})), 7),
        ("two static addresses", dict(config=conf(runtimeConfig={"ips": ["10.209.0.6/30",
                                                                          "10.209.0.10/30"]})), 7),
        ("address outside the pool", dict(config=conf(runtimeConfig={"ips": ["192.0.2.9/30"]})), 7),
        ("unknown CNI_ARGS", dict(config=conf(), args="FOO=1"), 4),
        ("bad CNI_ARGS IP", dict(config=conf(), args="IgnoreUnknown=1;IP=10.1"), 4),
        ("netns a regular file", dict(config=conf(), netns="/etc/hostname"), 4),
        ("netns missing", dict(config=conf(), netns="/run/netns/nope"), 4),
        ("netns relative", dict(config=conf(), netns="run/netns/hostile"), 4),
        ("netns not a network one", dict(config=conf(), netns="/proc/self/ns/mnt"), 4),
        ("netns the caller's own", dict(config=conf(), netns="/proc/self/ns/net"), 4),
        ("ifname too long", dict(config=conf(), netns=path, ifname="x" * 16), 4),
        ("ifname with a slash", dict(config=conf(), netns=path, ifname="a/b"), 4),
        ("no CNI_CONTAINERID", dict(config=conf(), netns=path, env_drop=("CNI_CONTAINERID",)), 4),
        ("no CNI_PATH", dict(config=conf(), netns=path, env_drop=("CNI_PATH",)), 4),
        ("no CNI_NETNS", dict(config=conf(), env_drop=("CNI_NETNS",)), 4),
    ]
    for what, kw, code in cases:
        kw.setdefault("netns", path)
        config = kw.pop("config", None)
        rc, out = plugin("ADD", config, cid="hostile", **kw)
        check(is_error(rc, out, code), f"hostile {what}: rc {rc} {out}")
        after = state()
        check(after == before, f"hostile {what}: changed nothing: " + differs(before, after))
    rc, out = plugin("FROB", conf(), netns=path)
    check(is_error(rc, out, 4), f"unknown verb: {out}")
    rc, out = plugin("ADD", None, netns=path, env_drop=("CNI_COMMAND",))
    check(is_error(rc, out, 4), f"no CNI_COMMAND: {out}")
    check(state() == before, "hostile verbs changed nothing")
    sh("ip", "netns", "del", "hostile")


def test_static_ip_and_mac():
    path = netns("stat")
    rc, res = plugin("ADD", conf(), cid="stat", netns=path,
                     args="IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:ab:cd;IP=10.209.0.202")
    check(rc == 0, f"ADD with IP= and MAC=: {res}")
    check(inner_addrs("stat") == ["10.209.0.202/30"], f"IP= honoured: {inner_addrs('stat')}")
    mac = [l["address"] for l in ipj("link", ns="stat") if l["ifname"] == "eth0"]
    check(mac == ["02:00:00:00:ab:cd"], f"MAC= honoured: {mac}")
    check(res["interfaces"][1].get("mac") == "02:00:00:00:ab:cd", "result has the MAC")
    # The host end knows the container by that MAC (a permanent neighbour entry), and traffic
    # both ways works.
    neigh = [n for n in ipj("-4", "neigh") if n.get("dst") == "10.209.0.202"]
    check([n.get("lladdr") for n in neigh] == ["02:00:00:00:ab:cd"], f"host's neighbour: {neigh}")
    check(subprocess.run(["ping", "-c", "3", "-i", "0.3", "-W", "1", "10.209.0.202"],
                         capture_output=True, timeout=10).returncode == 0, "the host reaches it")
    # The same address for another container: refused, and that one changed nothing.
    path2 = netns("stat2")
    before = state()
    rc, out = plugin("ADD", conf(runtimeConfig={"ips": ["10.209.0.202/30"]}), cid="stat2",
                     netns=path2)
    check(is_error(rc, out), f"an address in use is refused: {out}")
    check(state() == before, "the refused ADD changed nothing")
    plugin("DEL", conf(), cid="stat", netns=path)
    for ns in ("stat", "stat2"):
        sh("ip", "netns", "del", ns)


def tbf_rate(dev, ns=None):
    pre = ["tc", "-j"] + (["-n", ns] if ns else [])
    qdiscs = json.loads(sh(*pre, "qdisc", "show", "dev", dev).stdout or "[]")
    return [q["options"].get("rate") for q in qdiscs if q.get("kind") == "tbf"]


def test_bandwidth():
    path = netns("bw")
    rc, res = plugin("ADD", conf(runtimeConfig={"bandwidth": {"ingressRate": 1000000,
                                                              "egressRate": 2000000}}),
                     cid="bw", netns=path)
    check(rc == 0, f"ADD with bandwidth: {res}")
    host = res["interfaces"][0]["name"]
    # tc shows rates in bytes per second: 1 Mbit/s = 125000, 2 Mbit/s = 250000.
    check(tbf_rate(host) == [125000], f"ingressRate on the host end: {tbf_rate(host)}")
    check(tbf_rate("eth0", "bw") == [250000], f"egressRate inside: {tbf_rate('eth0', 'bw')}")
    plugin("DEL", conf(), cid="bw", netns=path)
    sh("ip", "netns", "del", "bw")


def test_egress_policy():
    path = netns("pol")
    cfg = conf(egress={"allow": ["203.0.113.2/32:7000/tcp"]})
    rc, res = plugin("ADD", cfg, cid="pol", netns=path)
    check(rc == 0, f"ADD with an egress policy: {res}")
    with serving("wan", 7000, "allowed"), serving("wan", 7001, "denied"):
        check(tcp_answer("pol", "203.0.113.2", 7000) == "allowed", "egress: the allowed port")
        check(tcp_answer("pol", "203.0.113.2", 7001) == "", "egress: another port is denied")
    for bad in ("203.0.113.2/40", "-bad-.test", "*", "web.test:0/tcp"):
        rc, out = plugin("ADD", conf(egress={"allow": [bad]}), cid="pol2", netns=path)
        check(is_error(rc, out, 7), f"egress: the bad rule {bad!r}: {out}")
    check(plugin("DEL", cfg, cid="pol", netns=path)[0] == 0, "DEL of the policy attachment")
    sh("ip", "netns", "del", "pol")


@contextlib.contextmanager
def dns_stub(zone):
    """tests/support/dns_stub.py answering `zone` on 203.0.113.2:53 in the wan (at most 120 s)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open("/run/cni-dns-zone.json", "w") as f:
        json.dump(zone, f)
    sh("ip", "netns", "exec", "wan", "python3", os.path.join(here, "..", "support", "dns_stub.py"),
       "--config", "/run/cni-dns-zone.json", "--listen", "203.0.113.2", "--log",
       "/run/cni-dns.log", "--daemon", "--pid-file", "/run/cni-dns.pid")
    pid = int(open("/run/cni-dns.pid").read())
    try:
        yield "/run/cni-dns.log"
    finally:
        os.kill(pid, 9)


def test_egress_domains():
    """Rules by domain name: the container resolves through netcell's resolver only, and reaches
    what an allowed name resolved to; a refused name never reaches the upstream."""
    path = netns("dom")
    cfg = conf(dns={"nameservers": ["203.0.113.2"]},
               egress={"allow": ["web.test:7000/tcp"]})
    zone = {"web.test": {"a": ["203.0.113.2"], "ttl": 60},
            "other.test": {"a": ["203.0.113.2"], "ttl": 60}}
    with dns_stub(zone) as log, serving("wan", 7000, "by-name"):
        rc, res = plugin("ADD", cfg, cid="dom", netns=path)
        check(rc == 0, f"ADD with a domain rule: {res}")
        gw = res["ips"][0]["gateway"] if isinstance(res, dict) and res.get("ips") else "?"
        check(res.get("dns", {}).get("nameservers") == [gw],
              f"the result's dns names netcell's resolver at the gateway: {res.get('dns')}")
        check(tcp_answer("dom", "203.0.113.2", 7000) == "",
              "before the lookup, the address of the name is not reachable")
        dig = ["ip", "netns", "exec", "dom", "dig", "+time=2", "+tries=1", "+short"]
        check(sh(*dig, "@" + gw, "web.test", ok=False).stdout.strip() == "203.0.113.2",
              "the allowed name resolves through the gateway")
        check(tcp_answer("dom", "203.0.113.2", 7000) == "by-name",
              "after the lookup, the allowed name's address and port are reachable")
        r = sh(*dig[:-1], "@" + gw, "other.test", ok=False)
        check("status: REFUSED" in r.stdout and "203.0.113.2" not in r.stdout,
              f"a name the policy does not allow is REFUSED: {r.stdout!r}")
        r = sh(*dig, "@203.0.113.2", "web.test", ok=False)
        check("203.0.113.2" not in r.stdout.splitlines() and "unreachable" in r.stdout,
              f"DNS straight to the upstream is refused at once: {r.stdout!r}")
        time.sleep(0.2)
        queried = open(log).read()
        check("web.test" in queried and "other.test" not in queried,
              f"only the allowed name reached the upstream: {queried!r}")
        check(plugin("DEL", cfg, cid="dom", netns=path)[0] == 0, "DEL of the domain attachment")
    sh("ip", "netns", "del", "dom")


def answer_within(host, port, text, seconds=3):
    """Whether a connect from the world to host:port gets `text` within `seconds` (the [::1]
    relay of netcell's host service listens a moment after the ADD returns)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if tcp_answer(None, host, port) == text:
            return True
        time.sleep(0.1)
    return False


def test_published_port_and_nat():
    """portMappings over both families: a mapping without hostIP on the world's IPv4 and IPv6
    addresses and loopbacks ([::1] relayed by netcell's host service), one with hostIP ::1 there
    only; all of it closed after DEL."""
    path = netns("web")
    mapping = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                                {"hostPort": 8090, "containerPort": 80, "protocol": "tcp",
                                 "hostIP": "::1"}]}
    rc, res = plugin("ADD", conf(runtimeConfig=mapping), cid="web", netns=path)
    check(rc == 0, f"ADD with portMappings: {res}")
    with serving("web", 80, "hello-from-web"), serving("web", 80, "hello-from-web", bind="::"):
        check(tcp_answer("wan", "203.0.113.1", 8080) == "hello-from-web",
              "published port answers from the wan")
        check(tcp_answer(None, "127.0.0.1", 8080) == "hello-from-web",
              "published port answers on 127.0.0.1")
        check(tcp_answer("wan", "2001:db8:1::1", 8080) == "hello-from-web",
              "published port answers from the wan over IPv6")
        check(answer_within("::1", 8080, "hello-from-web"), "published port answers on [::1]")
        check(answer_within("::1", 8090, "hello-from-web"), "hostIP ::1 answers on [::1]")
        check(tcp_answer("wan", "2001:db8:1::1", 8090) == ""
              and tcp_answer(None, "127.0.0.1", 8090) == "",
              "hostIP ::1 is published on [::1] only")
    with serving("wan", 7000, "hello-from-wan"):
        check(tcp_answer("web", "203.0.113.2", 7000) == "hello-from-wan",
              "the container reaches the wan through NAT")
    plugin("DEL", conf(runtimeConfig=mapping), cid="web", netns=path)
    check(tcp_answer("wan", "203.0.113.1", 8080) == "", "the port is closed after DEL")
    check(tcp_answer("wan", "2001:db8:1::1", 8080) == "", "closed over IPv6 after DEL")
    deadline = time.time() + 3
    while time.time() < deadline and (tcp_answer(None, "::1", 8080) or
                                      tcp_answer(None, "::1", 8090)):
        time.sleep(0.1)
    check(tcp_answer(None, "::1", 8080) == "" and tcp_answer(None, "::1", 8090) == "",
          "[::1] closed after DEL")
    sh("ip", "netns", "del", "web")


def test_chained_portmap():
    """netcell then the reference portmap plugin, as in a conflist; DEL in reverse order."""
    path = netns("chain")
    mapping = {"portMappings": [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}]}
    rc, res = plugin("ADD", conf("1.0.0"), cid="chain", netns=path)
    check(rc == 0, f"chain: netcell ADD {res}")
    pm = {"cniVersion": "1.0.0", "name": "cninet", "type": "portmap",
          "capabilities": {"portMappings": True}, "runtimeConfig": mapping, "prevResult": res}
    rc, res2 = plugin("ADD", pm, cid="chain", netns=path, binary=CNI_PATH + "/portmap")
    check(rc == 0 and isinstance(res2, dict) and res2.get("ips") == res["ips"],
          f"chain: portmap ADD after netcell {res2}")
    with serving("chain", 80, "hello-chained"):
        check(tcp_answer("wan", "203.0.113.1", 8081) == "hello-chained",
              "chain: portmap's port reaches netcell's container")
    pm["prevResult"] = res2
    rc, out = plugin("DEL", pm, cid="chain", netns=path, binary=CNI_PATH + "/portmap")
    check(rc == 0, f"chain: portmap DEL {out}")
    rc, out = plugin("CHECK", dict(conf("1.0.0"), prevResult=res2), cid="chain", netns=path)
    check(rc == 0, f"chain: CHECK with a chained prevResult {out}")
    rc, out = plugin("DEL", dict(conf("1.0.0"), prevResult=res2), cid="chain", netns=path)
    check(rc == 0, f"chain: netcell DEL {out}")
    check(not [n for n in netcell_list() if n.get("cni")], "chain: nothing of netcell's left")
    sh("ip", "netns", "del", "chain")


def test_chained_after_another_plugin():
    """prevResult from another main plugin is passed on, with netcell's interface appended."""
    path = netns("after")
    prev = {"cniVersion": "0.4.0", "interfaces": [{"name": "other0", "sandbox": path}],
            "ips": [{"version": "4", "address": "192.0.2.77/24", "interface": 0}]}
    rc, res = plugin("ADD", conf("0.4.0", prevResult=prev), cid="after", netns=path,
                     ifname="net1")
    # The other plugin's IP first, then netcell's two (dual stack), each naming its interface.
    check(rc == 0 and res["interfaces"][0]["name"] == "other0" and len(res["ips"]) == 3
          and res["ips"][0] == prev["ips"][0]
          and [ip["interface"] for ip in res["ips"][1:]] == [2, 2]
          and [ip["version"] for ip in res["ips"][1:]] == ["4", "6"],
          f"chained after another plugin: {res}")
    check(len(inner_addrs("after", "net1")) == 1, "net1 made under CNI_IFNAME")
    plugin("DEL", conf("0.4.0"), cid="after", netns=path, ifname="net1")
    sh("ip", "netns", "del", "after")


def test_chained_after_reference_bridge():
    """The reference bridge plugin (host-local IPAM through CNI_PATH) first, netcell second."""
    path = netns("refbr")
    br = {"cniVersion": "1.0.0", "name": "cninet", "type": "bridge", "bridge": "refbr0",
          "ipam": {"type": "host-local", "subnet": "198.51.100.0/24",
                   "dataDir": "/run/cni-ipam"}}
    rc, res = plugin("ADD", br, cid="refbr", netns=path, binary=CNI_PATH + "/bridge")
    check(rc == 0, f"reference bridge ADD: {res}")
    rc, res2 = plugin("ADD", conf("1.0.0", prevResult=res), cid="refbr", netns=path,
                      ifname="net1")
    check(rc == 0 and len(res2["interfaces"]) == len(res["interfaces"]) + 2
          and res2["ips"][:len(res["ips"])] == res["ips"], f"netcell after bridge: {res2}")
    check(inner_addrs("refbr", "eth0") and inner_addrs("refbr", "net1"),
          "both plugins' interfaces are in the container")
    prev = dict(conf("1.0.0"), prevResult=res2)
    check(plugin("CHECK", prev, cid="refbr", netns=path, ifname="net1")[0] == 0,
          "CHECK of netcell's part of the chain")
    check(plugin("DEL", prev, cid="refbr", netns=path, ifname="net1")[0] == 0, "netcell DEL")
    br["prevResult"] = res2
    rc, out = plugin("DEL", br, cid="refbr", netns=path, binary=CNI_PATH + "/bridge")
    check(rc == 0, f"reference bridge DEL: {out}")
    check(not inner_addrs("refbr", "net1") and not [n for n in netcell_list() if n.get("cni")],
          "nothing of netcell's is left")
    sh("ip", "netns", "del", "refbr")
    sh("ip", "link", "del", "refbr0", ok=False)


def test_bridged():
    paths = [netns(f"br{i}") for i in range(2)]
    cfg = conf("1.0.0", name="brnet", mode="bridged", subnet="10.77.0.0/24")
    results = []
    for i, p in enumerate(paths):
        rc, res = plugin("ADD", cfg, cid=f"br{i}", netns=p)
        check(rc == 0, f"bridged ADD {i}: {res}")
        results.append(res)
    if all(isinstance(r, dict) and r.get("ips") for r in results):
        peer = results[1]["ips"][0]["address"].split("/")[0]
        check(results[0]["ips"][0]["gateway"] == "10.77.0.1", "bridged gateway")
        r = sh("ip", "netns", "exec", "br0", "ping", "-c", "1", "-W", "2", peer, ok=False)
        check(r.returncode == 0, "bridged containers reach each other")
    if isinstance(results[0], dict) and results[0].get("ips"):
        # A bridge port's own address only (the bridge table): CHECK sees its element go.
        prev = dict(cfg, prevResult=results[0])
        check(plugin("CHECK", prev, cid="br0", netns=paths[0])[0] == 0, "bridged CHECK")
        element = (f'{{ "{results[0]["interfaces"][0]["name"]}" . '
                   f'{results[0]["ips"][0]["address"].split("/")[0]} }}')
        sh("nft", "delete", "element", "bridge", "netcell", "port_src", element)
        rc, out = plugin("CHECK", prev, cid="br0", netns=paths[0])
        check(is_error(rc, out) and "port_src" in out["msg"],
              f"bridged CHECK sees the bridge table's element missing: {out}")
        sh("nft", "add", "element", "bridge", "netcell", "port_src", element)
    for i, p in enumerate(paths):
        check(plugin("DEL", cfg, cid=f"br{i}", netns=p)[0] == 0, f"bridged DEL {i}")
        sh("ip", "netns", "del", f"br{i}")
    # Made by the first ADD, the network goes with the last DEL.
    check(not [l for l in ipj("link") if l["ifname"].startswith("ncbr")], "the bridge went")
    check(not [n for n in json.loads(sh(CLI, "network", "list", "--json").stdout)
               if n["name"] == "brnet"], "the network went with its last attachment")


def host_local_files(data_dir, network):
    """host-local's allocations of `network`, either family: {address: container id}."""
    d = os.path.join(data_dir, network)
    if not os.path.isdir(d):
        return {}
    out = {}
    for f in os.listdir(d):
        if f == "lock" or f.startswith("last_reserved_ip"):
            continue
        with open(os.path.join(d, f)) as fh:
            out[f] = fh.read().split()[0]
    return out


def add_each(cfg, cid_prefix, paths, what):
    """ADD of container CID_PREFIX<i> into each of `paths`, checked; the results ({} for one
    that is not an object)."""
    results = []
    for i, path in enumerate(paths):
        rc, res = plugin("ADD", cfg, cid=f"{cid_prefix}{i}", netns=path)
        check(rc == 0, f"{what} ADD {i}: {res}")
        results.append(res if isinstance(res, dict) else {})
    return results


def test_delegated_ipam():
    """host-local and static through CNI_PATH, as the reference main plugins run them."""
    data = "/run/cni-ipam-delegated"
    cfg = conf("1.0.0", name="ipamnet", mode="bridged", subnet="10.81.0.0/24",
               ipam={"type": "host-local", "dataDir": data,
                     "ranges": [[{"subnet": "10.81.0.0/24", "rangeStart": "10.81.0.100",
                                  "rangeEnd": "10.81.0.110"}]]})
    paths = [netns(f"ipam{i}") for i in range(2)]
    before = state()
    given = []
    for i, res in enumerate(add_each(cfg, "ipam", paths, "delegated ipam")):
        addr = res["ips"][0]["address"] if res.get("ips") else ""
        given.append(addr)
        check(inner_addrs(f"ipam{i}") == [addr], f"ipam ADD {i}: the kernel has {addr}")
    alloc = host_local_files(data, "ipamnet")
    check(sorted(alloc) == sorted(a.split("/")[0] for a in given) and
          sorted(alloc.values()) == ["ipam0", "ipam1"],
          f"host-local allocated what netcell configured: {alloc} vs {given}")
    check(all(a.startswith("10.81.0.1") and a.endswith("/24") for a in given),
          f"the addresses come from host-local's range: {given}")
    r = sh("ip", "netns", "exec", "ipam0", "ping", "-c", "1", "-W", "2",
           given[1].split("/")[0], ok=False)
    check(r.returncode == 0, "delegated ipam: the two containers reach each other")
    rc, out = plugin("CHECK", dict(cfg, prevResult={"cniVersion": "1.0.0", "ips": [
        {"address": given[0]}]}), cid="ipam0", netns=paths[0])
    check(rc == 0, f"delegated ipam CHECK (netcell's and host-local's): {out}")
    # An ADD that fails after the allocation gives the address back.
    rc, out = plugin("ADD", cfg, cid="ipambad", netns="/etc/hostname")
    check(is_error(rc, out, 4), f"delegated ipam: ADD into a file fails: {out}")
    check("ipambad" not in host_local_files(data, "ipamnet").values(),
          "a failed ADD gave host-local's address back")
    # IP= is host-local's to honour.
    path = netns("ipamip")
    rc, res = plugin("ADD", cfg, cid="ipamip", netns=path, args="IgnoreUnknown=1;IP=10.81.0.105")
    check(rc == 0 and inner_addrs("ipamip") == ["10.81.0.105/24"],
          f"IP= through host-local: {res} {inner_addrs('ipamip')}")
    check(plugin("DEL", cfg, cid="ipamip", netns=path)[0] == 0, "DEL of the IP= attachment")
    sh("ip", "netns", "del", "ipamip")
    for i, path in enumerate(paths):
        check(plugin("DEL", cfg, cid=f"ipam{i}", netns=path)[0] == 0, f"delegated ipam DEL {i}")
    check(host_local_files(data, "ipamnet") == {}, "DEL released host-local's addresses")
    check(plugin("DEL", cfg, cid="ipam0", netns=paths[0])[0] == 0, "a second DEL succeeds")
    after = state()
    check(after == before, f"delegated ipam left something: {differs(before, after)}")
    # The static ipam plugin: the address it is told.
    static = conf("1.0.0", name="ipamnet", mode="bridged", subnet="10.81.0.0/24",
                  ipam={"type": "static", "addresses": [{"address": "10.81.0.50/24"}]})
    rc, res = plugin("ADD", static, cid="ipam0", netns=paths[0])
    check(rc == 0 and inner_addrs("ipam0") == ["10.81.0.50/24"],
          f"static ipam: {res} {inner_addrs('ipam0')}")
    check(plugin("DEL", static, cid="ipam0", netns=paths[0])[0] == 0, "static ipam DEL")
    # An address the ipam plugin gives outside netcell's network: refused, and given back.
    outside = conf("1.0.0", name="ipamnet", mode="bridged", subnet="10.81.0.0/24",
                   ipam={"type": "host-local", "dataDir": data, "subnet": "10.82.0.0/24"})
    rc, out = plugin("ADD", outside, cid="ipam0", netns=paths[0])
    check(is_error(rc, out), f"an ipam address outside the network is refused: {out}")
    check(host_local_files(data, "ipamnet") == {}, "the refused address went back to host-local")
    after = state()
    check(after == before, f"the refused ADD left nothing (not the network it made either): "
          f"{differs(before, after)}")
    for i in range(2):
        sh("ip", "netns", "del", f"ipam{i}")


def test_delegated_ipam_dual_stack():
    """host-local with a range of each family on a dual-stack bridged network: each attachment
    gets the IPv4 and the IPv6 address host-local allocated (the kernel has both, the result
    lists both), the two reach each other over IPv6, DEL gives both back. A bridged namespace's
    IPv6 address is the one at its IPv4 address's offset in the network's subnet6 (as with
    static ips), so the ranges are aligned: 10.84.0.100-110 and fd84:1::64-6e. Refused, with both
    addresses given back to host-local and nothing left: an IPv6 address for a network without a
    subnet6, and one that does not go with the IPv4 address."""
    data = "/run/cni-ipam-dual"
    ranges = [[{"subnet": "10.84.0.0/24", "rangeStart": "10.84.0.100",
                "rangeEnd": "10.84.0.110"}],
              [{"subnet": "fd84:1::/64", "rangeStart": "fd84:1::64", "rangeEnd": "fd84:1::6e"}]]
    cfg = conf("1.0.0", name="ipamdual", mode="bridged", subnet="10.84.0.0/24",
               subnet6="fd84:1::/64", ipam={"type": "host-local", "dataDir": data,
                                            "ranges": ranges})
    paths = [netns(f"ipd{i}") for i in range(2)]
    before = state()
    given = []
    for i, res in enumerate(add_each(cfg, "ipd", paths, "dual-stack delegated ipam")):
        ips = [ip["address"] for ip in res.get("ips", [])]
        v4 = [a for a in ips if ":" not in a]
        v6 = [a for a in ips if ":" in a]
        check(len(v4) == 1 and len(v6) == 1, f"ADD {i}: one address of each family: {ips}")
        given.append((v4[0] if v4 else "", v6[0] if v6 else ""))
        check(inner_addrs(f"ipd{i}") == v4[:1], f"ADD {i}: the kernel has {v4}")
        check(inner_addrs6(f"ipd{i}") == v6[:1],
              f"ADD {i}: the kernel has {v6}: {inner_addrs6(f'ipd{i}')}")
    alloc = host_local_files(data, "ipamdual")
    wanted = sorted(a.split("/")[0] for pair in given for a in pair if a)
    check(sorted(alloc) == wanted and sorted(alloc.values()) == ["ipd0", "ipd0", "ipd1", "ipd1"],
          f"host-local allocated what netcell configured: {alloc} vs {given}")
    check(all(v4.startswith("10.84.0.1") and v6.startswith("fd84:1::6") and v6.endswith("/64")
              for v4, v6 in given), f"the addresses come from host-local's ranges: {given}")
    if len(given) == 2 and given[1][1]:
        r = sh("ip", "netns", "exec", "ipd0", "ping", "-6", "-c", "1", "-W", "2",
               given[1][1].split("/")[0], ok=False)
        check(r.returncode == 0, "delegated IPv6: the two containers reach each other")
        r = sh("ip", "netns", "exec", "ipd0", "ping", "-c", "1", "-W", "2",
               given[1][0].split("/")[0], ok=False)
        check(r.returncode == 0, "and over IPv4")
    for i, path in enumerate(paths):
        check(plugin("DEL", cfg, cid=f"ipd{i}", netns=path)[0] == 0, f"dual ipam DEL {i}")
    check(host_local_files(data, "ipamdual") == {}, "DEL released both families' addresses")
    check(state() == before, f"dual-stack delegated ipam left something: "
          f"{differs(before, state())}")
    # The same ranges on a network without a subnet6: refused, both addresses given back, and
    # nothing left (the network the ADD made included).
    v4only = conf("1.0.0", name="ipamdual", mode="bridged", subnet="10.84.0.0/24",
                  ipam={"type": "host-local", "dataDir": data, "ranges": ranges})
    rc, out = plugin("ADD", v4only, cid="ipd0", netns=paths[0])
    check(is_error(rc, out), f"an IPv6 address for an IPv4-only network is refused: {out}")
    check(host_local_files(data, "ipamdual") == {}, "both refused addresses went back")
    check(state() == before, f"the refused ADD left nothing: {differs(before, state())}")
    skewed = conf("1.0.0", name="ipamdual", mode="bridged", subnet="10.84.0.0/24",
                  subnet6="fd84:1::/64", ipam={"type": "host-local", "dataDir": data, "ranges": [
                      ranges[0], [{"subnet": "fd84:1::/64", "rangeStart": "fd84:1::80",
                                   "rangeEnd": "fd84:1::8a"}]]})
    rc, out = plugin("ADD", skewed, cid="ipd0", netns=paths[0])
    check(is_error(rc, out) and "not one namespace's addresses" in out.get("msg", ""),
          f"an IPv6 address that does not go with the IPv4 one is refused: {out}")
    check(host_local_files(data, "ipamdual") == {}, "both skewed addresses went back")
    check(state() == before, f"the skewed ADD left nothing: {differs(before, state())}")
    for i in range(2):
        sh("ip", "netns", "del", f"ipd{i}")


def test_ipam_timeout():
    """A delegated IPAM plugin that hangs, or answers without end, is killed after ipamTimeout
    seconds and the ADD fails with nothing left (the plugin's process included); a plugin that
    answers in time is unaffected (the positive control: the same script, answering at once)."""
    fake = "/run/cni-fake-ipam"
    os.makedirs(fake, exist_ok=True)
    scripts = {
        # Reads its configuration, writes its pid, then hangs (bounded: 30 s) before answering.
        "hangipam": "#!/bin/sh\ncat >/dev/null\necho $$ > %s/hang.pid\nexec sleep 30\n" % fake,
        # Writes its pid, then its stdout without end (bounded by the timeout's kill).
        "floodipam": "#!/bin/sh\necho $$ > %s/flood.pid\nexec yes '{}'\n" % fake,
        # Answers at once with an address of the network.
        "quickipam": "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\": \"1.0.0\", "
                     "\"ips\": [{\"address\": \"10.83.0.9/24\"}]}'\n",
    }
    for name, text in scripts.items():
        with open(os.path.join(fake, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(fake, name), 0o755)
    path = netns("ipamto")
    before = state()
    for name, what in (("hangipam", "did not answer in time"),
                       ("floodipam", "answered more than 1 MiB")):
        cfg = conf("1.0.0", name="ipamto", mode="bridged", subnet="10.83.0.0/24",
                   ipam={"type": name}, ipamTimeout=2)
        t0 = time.time()
        rc, out = plugin("ADD", cfg, cid="ipamto", netns=path, path=fake)
        took = time.time() - t0
        check(is_error(rc, out) and what in out.get("msg", ""), f"{name}: {out}")
        check(took < 10, f"{name}: ADD returned after {took:.1f} s (ipamTimeout 2)")
        pid_file = os.path.join(fake, name.replace("ipam", "") + ".pid")
        pid = open(pid_file).read().strip() if os.path.exists(pid_file) else ""
        check(pid != "" and not os.path.exists("/proc/" + pid),
              f"{name}: the plugin (pid {pid or '?'}) was killed and reaped")
        after = state()
        check(after == before, f"{name}: the failed ADD left something: {differs(before, after)}")
    cfg = conf("1.0.0", name="ipamto", mode="bridged", subnet="10.83.0.0/24",
               ipam={"type": "quickipam"}, ipamTimeout=2)
    rc, res = plugin("ADD", cfg, cid="ipamto", netns=path, path=fake)
    check(rc == 0 and inner_addrs("ipamto") == ["10.83.0.9/24"],
          f"a plugin that answers in time: {res} {inner_addrs('ipamto')}")
    check(plugin("DEL", cfg, cid="ipamto", netns=path, path=fake)[0] == 0, "its DEL")
    for bad in (0, 3601, "2", -1):
        cfg = conf("1.0.0", name="ipamto", mode="bridged", subnet="10.83.0.0/24",
                   ipam={"type": "quickipam"}, ipamTimeout=bad)
        rc, out = plugin("ADD", cfg, cid="ipamto", netns=path, path=fake)
        check(is_error(rc, out, 7), f"ipamTimeout {bad!r} refused: {out}")
    check(state() == before, f"ipam timeouts left something: {differs(before, state())}")
    sh("ip", "netns", "del", "ipamto")


def inner_addrs6(ns, ifname="eth0"):
    return [a["local"] + "/" + str(a["prefixlen"]) for l in ipj("-6", "addr", "show", ns=ns)
            if l["ifname"] == ifname for a in l.get("addr_info", [])
            if a.get("scope") == "global"]


def reaches_internet6(ns, port, what):
    """`ns` connects to the IPv6 internet (the wan's 2001:db8:1::2) and the wan sees the world's
    address, 2001:db8:1::1: NAT66."""
    log = f"/run/cni-{ns}-wan6.log"
    with serving("wan", port, "hello-over-ipv6", bind="2001:db8:1::2", log=log):
        check(tcp_answer(ns, "2001:db8:1::2", port) == "hello-over-ipv6",
              f"{what} reaches the IPv6 internet")
    seen = open(log).read().split() if os.path.exists(log) else []
    check(seen == ["2001:db8:1::1"],
          f"{what}: through NAT66 (the wan saw the world's address): {seen}")


def test_dual_stack():
    """A private attachment is dual-stack like a netcell namespace: both families in the result
    (each IP with its own gateway, a default route each), in the kernel and in traffic (NAT66 to
    the IPv6 internet); CHECK covers the IPv6 part; DEL takes it all. A container whose namespace
    has IPv6 off gets IPv4 only, and its host end no IPv6 either."""
    path = netns("ds")
    before = state()
    rc, res = plugin("ADD", conf("1.1.0"), cid="ds", netns=path)
    check(rc == 0, f"dual-stack ADD: {res}")
    if rc != 0:
        return
    v6 = [ip for ip in res["ips"] if ":" in ip["address"]]
    v4 = [ip for ip in res["ips"] if ":" not in ip["address"]]
    check(len(v4) == 1 and len(v6) == 1, f"one IP of each family: {res['ips']}")
    if len(v6) != 1:
        return
    check(v6[0]["address"].endswith("::2/64") and v6[0]["gateway"].endswith("::1")
          and v6[0]["gateway"].startswith("fd"), f"the IPv6 IP: {v6[0]}")
    check(sorted(r["dst"] for r in res.get("routes", [])) == ["0.0.0.0/0", "::/0"],
          f"a default route of each family: {res.get('routes')}")
    check(inner_addrs6("ds") == [v6[0]["address"]], f"the kernel has {inner_addrs6('ds')}")
    check(any(r.get("dst") == "default" and r.get("gateway") == v6[0]["gateway"]
              for r in ipj("-6", "route", ns="ds")), "the IPv6 default route inside")
    reaches_internet6("ds", 7006, "the container")
    prev = dict(conf("1.1.0"), prevResult=res)
    check(plugin("CHECK", prev, cid="ds", netns=path)[0] == 0, "CHECK of a dual-stack attachment")
    sh("ip", "-n", "ds", "-6", "route", "del", "default")
    rc, out = plugin("CHECK", prev, cid="ds", netns=path)
    check(is_error(rc, out) and v6[0]["gateway"] in out.get("msg", ""),
          f"CHECK sees the IPv6 default route missing: {out}")
    sh("ip", "-n", "ds", "-6", "route", "add", "default", "via", v6[0]["gateway"])
    host = res["interfaces"][0]["name"]
    element = f'{{ "{host}" . {v6[0]["address"].split("/")[0]} }}'
    sh("nft", "delete", "element", "ip6", "netcell", "src_ok6", element)
    rc, out = plugin("CHECK", prev, cid="ds", netns=path)
    check(is_error(rc, out) and "src_ok6" in out.get("msg", ""),
          f"CHECK sees the IPv6 anti-spoofing element missing: {out}")
    sh("nft", "add", "element", "ip6", "netcell", "src_ok6", element)
    check(plugin("CHECK", prev, cid="ds", netns=path)[0] == 0, "CHECK passes with it back")
    check(plugin("DEL", prev, cid="ds", netns=path)[0] == 0, "DEL of the dual-stack attachment")
    check(wait_gone(host), "its host end is gone")
    after = state()
    check(after == before, f"DEL left the world as it was: {differs(before, after)}")

    # A runtime asking for the attachment's addresses again (podman's network reload sends them,
    # the IPv6 one without its length) gets them; IPv6 ones that do not go with the IPv4 one, or
    # two of a family, are refused and change nothing.
    again = {"ips": [v4[0]["address"].split("/")[0], v6[0]["address"].split("/")[0]]}
    rc, res2 = plugin("ADD", conf("1.1.0", runtimeConfig=again), cid="ds", netns=path)
    check(rc == 0 and sorted(ip["address"] for ip in res2.get("ips", [])) ==
          sorted([v4[0]["address"], v6[0]["address"]]), f"ips of both families honoured: {res2}")
    check(inner_addrs6("ds") == [v6[0]["address"]], f"the kernel has {inner_addrs6('ds')}")
    check(plugin("DEL", conf("1.1.0"), cid="ds", netns=path)[0] == 0, "its DEL")
    wait_gone(res2["interfaces"][0]["name"] if rc == 0 else "")
    own6 = ipaddress.IPv6Interface(v6[0]["address"])
    other_block = f"{own6.ip + (1 << 64)}/64"  # the ::2 of the next /64
    not_two = f"{own6.ip + 1}/64"  # ::3 of its own /64
    for what, ips, code in (
            ("an IPv6 address of another block", [v4[0]["address"], other_block], None),
            ("not the block's ::2", [v4[0]["address"], not_two], None),
            ("two IPv6 addresses", [str(own6), other_block], 7),
            ("an IPv6 address outside the pool", ["2001:db8:9::2/64"], None)):
        rc, out = plugin("ADD", conf("1.1.0", runtimeConfig={"ips": ips}), cid="ds", netns=path)
        check(is_error(rc, out, code), f"ips with {what} refused: {out}")
        after = state()
        check(after == before, f"ips with {what}: changed nothing: {differs(before, after)}")
    rc, out = plugin("ADD", conf("1.1.0", name="dsbr", mode="bridged", subnet="10.84.0.0/24",
                                 runtimeConfig={"ips": ["10.84.0.9/24", "fd00::9/64"]}),
                     cid="ds", netns=path)
    check(is_error(rc, out, 7) and "IPv4-only" in out.get("msg", ""),
          f"an IPv6 address on a bridged (IPv4-only) network: {out}")
    after = state()
    check(after == before, f"that ADD left nothing (its network neither): {differs(before, after)}")

    # IPv6 off inside the container's namespace (as a runtime's sysctl would set it).
    sh("ip", "netns", "exec", "ds", "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    rc, res = plugin("ADD", conf("1.1.0"), cid="ds4", netns=path)
    check(rc == 0 and [":" in ip["address"] for ip in res.get("ips", [])] == [False]
          and [r["dst"] for r in res.get("routes", [])] == ["0.0.0.0/0"],
          f"IPv6 off inside: an IPv4-only result: {res}")
    if rc == 0:
        host = res["interfaces"][0]["name"]
        listed = [n for n in netcell_list() if n.get("cni", {}).get("container_id") == "ds4"]
        check(len(listed) == 1 and "disabled inside" in listed[0].get("ipv4_only", ""),
              f"netcell says why it is IPv4-only: {listed}")
        host_addrs = [a for l in ipj("-6", "addr", "show", "dev", host)
                      for a in l.get("addr_info", [])]
        check(host_addrs == [], f"its host end has no IPv6 either: {host_addrs}")
        with serving("wan", 7004, "hello-over-ipv4"):
            check(tcp_answer("ds", "203.0.113.2", 7004) == "hello-over-ipv4", "IPv4 works")
        check(plugin("DEL", conf("1.1.0"), cid="ds4", netns=path)[0] == 0, "its DEL")
        check(wait_gone(host), "its host end is gone")
    sh("ip", "netns", "del", "ds")


def test_bridged_dual_stack():
    """A bridged configuration with a subnet6 makes a dual-stack network: each attachment gets the
    IPv6 address at its IPv4 address's offset (both in the result, each with its gateway, a
    default route each, and in the kernel); attachments reach each other over IPv6 and the IPv6
    internet through NAT66; CHECK covers the IPv6 part; ips take an address of each family (the
    IPv6 one alone names the IPv4 one); a configuration whose subnet6 is not the network's is
    refused; the last DEL leaves the world as it was."""
    before = state()
    cfg = conf("1.1.0", name="dsnet", mode="bridged", subnet="10.86.0.0/24",
               subnet6="fd86:1::/64")
    paths = [netns(f"dsb{i}") for i in range(3)]
    try:
        bridged_dual_stack_steps(cfg, paths)
    finally:  # a step that returned early leaves nothing for the next test either
        for cid, i, c in (("dsb0", 0, cfg), ("dsb1", 1, cfg), ("dsb2", 2, cfg),
                          ("dsb2", 2, conf("1.1.0", name="v4net", mode="bridged"))):
            plugin("DEL", c, cid=cid, netns=paths[i])
        for i in range(3):
            sh("ip", "netns", "del", f"dsb{i}", ok=False)
    check(not [n for n in json.loads(sh(CLI, "network", "list", "--json").stdout)
               if n["name"] in ("dsnet", "v4net")], "the networks went with their last attachment")
    after = state()
    check(after == before, f"the last DEL left the world as it was: {differs(before, after)}")


def bridged_dual_stack_steps(cfg, paths):
    results = []
    for i in range(2):
        rc, res = plugin("ADD", cfg, cid=f"dsb{i}", netns=paths[i])
        check(rc == 0, f"dual-stack bridged ADD {i}: {res}")
        results.append(res if rc == 0 else {})
    for i, res in enumerate(results):
        ips = res.get("ips", [])
        v4 = [ip for ip in ips if ":" not in ip["address"]]
        v6 = [ip for ip in ips if ":" in ip["address"]]
        check(len(v4) == 1 and len(v6) == 1, f"attachment {i}: one IP of each family: {ips}")
        if len(v4) != 1 or len(v6) != 1:
            return
        own4 = ipaddress.IPv4Interface(v4[0]["address"])
        own6 = ipaddress.IPv6Interface(v6[0]["address"])
        check(own6.network == ipaddress.IPv6Network("fd86:1::/64") and v6[0]["gateway"] ==
              "fd86:1::1" and v4[0]["gateway"] == "10.86.0.1", f"attachment {i}: {ips}")
        check(int(own6.ip) & 0xffffffff == int(own4.ip) & 0xff,
              f"attachment {i}: the IPv6 address at the IPv4 one's offset: {own4} {own6}")
        check(sorted(r["dst"] for r in res.get("routes", [])) == ["0.0.0.0/0", "::/0"],
              f"attachment {i}: a default route of each family: {res.get('routes')}")
        check(inner_addrs6(f"dsb{i}") == [str(own6)],
              f"attachment {i}: the kernel has {inner_addrs6(f'dsb{i}')}")
    if len(results) != 2 or not all(results):
        return
    peer6 = [ip["address"].split("/")[0] for ip in results[1]["ips"] if ":" in ip["address"]][0]
    r = sh("ip", "netns", "exec", "dsb0", "ping", "-6", "-c", "1", "-W", "2", peer6, ok=False)
    check(r.returncode == 0, "dual-stack bridged attachments reach each other over IPv6")
    reaches_internet6("dsb0", 7016, "a bridged attachment")

    prev = dict(cfg, prevResult=results[0])
    check(plugin("CHECK", prev, cid="dsb0", netns=paths[0])[0] == 0, "dual-stack bridged CHECK")
    sh("ip", "-n", "dsb0", "-6", "route", "del", "default")
    rc, out = plugin("CHECK", prev, cid="dsb0", netns=paths[0])
    check(is_error(rc, out) and "fd86:1::1" in out.get("msg", ""),
          f"CHECK sees the IPv6 default route missing: {out}")
    sh("ip", "-n", "dsb0", "-6", "route", "add", "default", "via", "fd86:1::1")
    check(plugin("CHECK", prev, cid="dsb0", netns=paths[0])[0] == 0, "CHECK passes with it back")

    # Static addresses: one of each family that go together; an IPv6 one alone (without its
    # length, as podman gives it) names the IPv4 one at its offset; others are refused.
    during = state()
    for what, ips in (("addresses that do not go together", ["10.86.0.51/24", "fd86:1::99/64"]),
                      ("an IPv6 address outside the subnet6", ["fd87::5"]),
                      ("the gateway's IPv6 address", ["fd86:1::1"])):
        rc, out = plugin("ADD", conf("1.1.0", name="dsnet", mode="bridged",
                                     subnet="10.86.0.0/24", subnet6="fd86:1::/64",
                                     runtimeConfig={"ips": ips}), cid="dsb2", netns=paths[2])
        check(is_error(rc, out, 7), f"ips with {what} refused: {out}")
        after = state()
        check(after == during, f"ips with {what}: changed nothing: {differs(during, after)}")
    for ips, want4, want6 in ((["10.86.0.50/24", "fd86:1::32/64"], "10.86.0.50/24",
                               "fd86:1::32/64"),
                              (["fd86:1::40"], "10.86.0.64/24", "fd86:1::40/64")):
        rc, res = plugin("ADD", conf("1.1.0", name="dsnet", mode="bridged",
                                     subnet="10.86.0.0/24", subnet6="fd86:1::/64",
                                     runtimeConfig={"ips": ips}), cid="dsb2", netns=paths[2])
        got = sorted(ip["address"] for ip in res.get("ips", [])) if rc == 0 else res
        check(got == sorted([want4, want6]), f"ips {ips}: {got}")
        check(inner_addrs6("dsb2") == [want6], f"ips {ips}: the kernel has {inner_addrs6('dsb2')}")
        check(plugin("DEL", cfg, cid="dsb2", netns=paths[2])[0] == 0, f"ips {ips}: its DEL")
        if rc == 0:
            wait_gone(res["interfaces"][0]["name"])

    # The network exists: a configuration must agree with its subnet6.
    for what, other in (("another subnet6", dict(subnet6="fd86:2::/64")),
                        ("a subnet6 for an IPv4-only network", None)):
        if other is None:
            c = conf("1.1.0", name="v4net", mode="bridged", subnet="10.87.0.0/24")
            rc, res = plugin("ADD", c, cid="dsb2", netns=paths[2])
            check(rc == 0, f"an IPv4-only bridged ADD: {res}")
            rc, out = plugin("ADD", dict(c, subnet6="fd87:1::/64"), cid="dsb3", netns=paths[2],
                             ifname="eth1")
            check(is_error(rc, out, 7) and "no subnet6" in out.get("msg", ""), f"{what}: {out}")
            check(plugin("DEL", c, cid="dsb2", netns=paths[2])[0] == 0, "the IPv4-only DEL")
            continue
        rc, out = plugin("ADD", dict(cfg, **other), cid="dsb2", netns=paths[2])
        check(is_error(rc, out, 7) and "fd86:1::/64" in out.get("msg", ""), f"{what}: {out}")
        after = state()
        check(after == during, f"{what}: changed nothing: {differs(during, after)}")

    for i in range(2):
        check(plugin("DEL", cfg, cid=f"dsb{i}", netns=paths[i])[0] == 0, f"dual-stack DEL {i}")
        wait_gone(results[i]["interfaces"][0]["name"])


def test_netns_netcell_made():
    """CNI_NETNS naming a namespace netcell made itself (netcell create) is refused: found by
    where netcell keeps it, among many adopted ones; a namespace adopted twice (a container on
    two networks) is fine."""
    sh(CLI, "create", "owned1", "--mode", "full")
    paths = [netns(f"many{i}") for i in range(3)]
    for i, p in enumerate(paths):
        check(plugin("ADD", conf(), cid=f"many{i}", netns=p)[0] == 0, f"ADD many{i}")
    before = state()
    rc, out = plugin("ADD", conf(), cid="owned", netns="/run/netns/owned1")
    check(is_error(rc, out, 4) and "already manages it as 'owned1'" in out["msg"],
          f"CNI_NETNS of a namespace netcell made: {out}")
    check(state() == before, "the refused ADD changed nothing")
    rc, out = plugin("ADD", conf(name="second"), cid="many0", netns=paths[0], ifname="net1")
    check(rc == 0, f"a second attachment of an adopted namespace: {out}")
    plugin("DEL", conf(name="second"), cid="many0", netns=paths[0], ifname="net1")
    for i, p in enumerate(paths):
        plugin("DEL", conf(), cid=f"many{i}", netns=p)
        sh("ip", "netns", "del", f"many{i}")
    sh(CLI, "destroy", "owned1")


def test_mtu():
    path = netns("mtu")
    rc, res = plugin("ADD", conf("1.0.0", mtu=1280), cid="mtu", netns=path)
    check(rc == 0, f"ADD with mtu 1280: {res}")
    inside = [l.get("mtu") for l in ipj("link", "show", "eth0", ns="mtu")]
    host = [l.get("mtu") for l in ipj("link", "show", res["interfaces"][0]["name"])]
    check(inside == [1280] and host == [1280], f"mtu 1280 on both ends: {inside} {host}")
    with serving("wan", 7000, "x" * 4000):
        check(tcp_answer("mtu", "203.0.113.2", 7000) == "x" * 4000,
              "4000 bytes come in through the 1280-byte link")
    plugin("DEL", conf("1.0.0"), cid="mtu", netns=path)
    sh("ip", "netns", "del", "mtu")


def test_dns_capability():
    path = netns("dnscap")
    dns = {"servers": ["192.0.2.53"], "searches": ["example.test"], "options": ["ndots:2"]}
    rc, res = plugin("ADD", conf("1.0.0", dns={"nameservers": ["198.51.100.53"]},
                                 runtimeConfig={"dns": dns}), cid="dnscap", netns=path)
    check(rc == 0 and res.get("dns") == {"nameservers": ["192.0.2.53"],
                                         "search": ["example.test"], "options": ["ndots:2"]},
          f"runtimeConfig.dns is the result's dns: {res}")
    plugin("DEL", conf("1.0.0"), cid="dnscap", netns=path)
    sh("ip", "netns", "del", "dnscap")


def test_chained_tuning_and_bandwidth():
    """The reference tuning and bandwidth plugins after netcell, on its prevResult."""
    path = netns("tune")
    rc, res = plugin("ADD", conf("1.0.0"), cid="tune", netns=path)
    check(rc == 0, f"tuning chain: netcell ADD {res}")
    tuning = {"cniVersion": "1.0.0", "name": "cninet", "type": "tuning", "mtu": 1400,
              "sysctl": {"net.ipv4.conf.eth0.arp_ignore": "1"}, "prevResult": res}
    rc, res2 = plugin("ADD", tuning, cid="tune", netns=path, binary=CNI_PATH + "/tuning")
    check(rc == 0, f"tuning ADD after netcell: {res2}")
    mtu = [l.get("mtu") for l in ipj("link", "show", "eth0", ns="tune")]
    check(mtu == [1400], f"tuning set eth0's mtu: {mtu}")
    with open(f"/run/netns/tune") as _:
        r = sh("ip", "netns", "exec", "tune", "cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore")
    check(r.stdout.strip() == "1", "tuning set the sysctl inside")
    bw = {"cniVersion": "1.0.0", "name": "cninet", "type": "bandwidth",
          "capabilities": {"bandwidth": True},
          "runtimeConfig": {"bandwidth": {"egressRate": 8000000, "egressBurst": 1000000,
                                          "ingressRate": 8000000, "ingressBurst": 1000000}},
          "prevResult": res2}
    rc, res3 = plugin("ADD", bw, cid="tune", netns=path, binary=CNI_PATH + "/bandwidth")
    check(rc == 0, f"bandwidth ADD after netcell: {res3}")
    host = res["interfaces"][0]["name"]
    check(tbf_rate(host) == [1000000], f"bandwidth's tbf on netcell's host end: {tbf_rate(host)}")
    for p, cfg in (("bandwidth", dict(bw, prevResult=res3)), ("tuning", dict(tuning, prevResult=res3))):
        rc, out = plugin("DEL", cfg, cid="tune", netns=path, binary=CNI_PATH + "/" + p)
        check(rc == 0, f"{p} DEL: {out}")
    check(plugin("DEL", conf("1.0.0"), cid="tune", netns=path)[0] == 0, "netcell DEL after them")
    check(wait_gone(host), "the host end went")
    sh("ip", "netns", "del", "tune")


def test_status():
    rc, out = plugin("STATUS", conf("1.1.0"), env_drop=("CNI_CONTAINERID", "CNI_IFNAME"))
    check(rc == 0 and out is None, f"STATUS: {out}")
    rc, out = plugin("STATUS", conf("1.1.0", mode="bridged", network="nonet"))
    check(is_error(rc, out, 50), f"STATUS of a network it cannot make: {out}")
    rc, out = plugin("STATUS", conf("1.0.0"))
    check(is_error(rc, out, 1), f"STATUS before 1.1.0: {out}")
    # A kernel feature missing: libnftables cannot be loaded (hidden by /dev/null in a mount
    # namespace of the plugin's own).
    lib = [l.split(" => ")[1] for l in sh("ldconfig", "-p").stdout.splitlines()
           if "libnftables.so.1 " in l][0]
    wrapper = "/run/status-without-nftables.sh"
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec unshare -m sh -c 'mount --bind /dev/null {lib} && exec {PLUGIN}'\n")
    os.chmod(wrapper, 0o755)
    rc, out = plugin("STATUS", conf("1.1.0"), binary=wrapper)
    check(is_error(rc, out, 50) and "libnftables" in out["msg"],
          f"STATUS without libnftables: {out}")
    check(plugin("STATUS", conf("1.1.0"))[0] == 0, "STATUS with it again")
    # A pool with room for 5 (a /29 but its network, gateway and broadcast addresses): STATUS
    # says when it is full, and ADD then fails.
    small = conf("1.1.0", name="small", mode="bridged", subnet="10.79.0.0/29")
    paths = [netns(f"full{i}") for i in range(6)]
    for i in range(5):
        check(plugin("ADD", small, cid=f"full{i}", netns=paths[i])[0] == 0, f"pool ADD {i}")
        rc, out = plugin("STATUS", small)
        check((rc == 0) == (i < 4), f"STATUS with {i + 1} of 5 taken: {out}")
    check(is_error(*plugin("STATUS", small), 50), "STATUS of a full pool is 50")
    rc, out = plugin("ADD", small, cid="full5", netns=paths[5])
    check(is_error(rc, out), f"ADD to a full pool fails: {out}")
    for i in range(6):
        plugin("DEL", small, cid=f"full{i}", netns=paths[i])
        sh("ip", "netns", "del", f"full{i}")


def test_gc():
    paths = {c: netns("gc" + c) for c in ("a", "b", "c")}
    other = netns("gcother")
    hosts = {}
    for c, p in paths.items():
        rc, res = plugin("ADD", conf("1.1.0"), cid="gc" + c, netns=p)
        check(rc == 0, f"GC setup {c}: {res}")
        hosts[c] = res["interfaces"][0]["name"]
    rc, res = plugin("ADD", conf("1.1.0", name="othernet"), cid="gcb", netns=other)
    check(rc == 0, f"GC setup on another network: {res}")
    other_host = res["interfaces"][0]["name"]
    valid = [{"containerID": "gca", "ifname": "eth0"}]
    rc, out = plugin("GC", dict(conf("1.1.0"), **{"cni.dev/valid-attachments": valid}),
                     env_drop=("CNI_CONTAINERID", "CNI_IFNAME"))
    check(rc == 0 and out is None, f"GC: {out}")
    links = [l["ifname"] for l in ipj("link")]
    check(hosts["a"] in links and inner_addrs("gca"), "GC kept the valid attachment")
    check(other_host in links and inner_addrs("gcother"), "GC kept the other network's")
    for c in ("b", "c"):
        check(wait_gone(hosts[c]) and not inner_addrs("gc" + c), f"GC removed {c}")
    names = sorted(n["cni"]["container_id"] for n in netcell_list() if n.get("cni"))
    check(names == ["gca", "gcb"], f"GC's records: {names}")
    for c, p in [("a", paths["a"])]:
        plugin("DEL", conf("1.1.0"), cid="gca", netns=p)
    plugin("DEL", conf("1.1.0", name="othernet"), cid="gcb", netns=other)
    for ns in ["gca", "gcb", "gcc", "gcother"]:
        sh("ip", "netns", "del", ns)


def test_interrupted_add():
    """SIGKILL at every step of an ADD; the next DEL, GC or `netcell gc` undoes it."""
    path = netns("crash")
    baseline = state()
    mapping = {"portMappings": [{"hostPort": 9090, "containerPort": 80, "protocol": "tcp"}]}
    cfg = conf("1.1.0", runtimeConfig=mapping)
    recoveries = ["DEL", "GC", "netcell gc"]
    step = 0
    for step in range(1, 40):
        env = dict(os.environ, NETCELL_FAULT_AT=str(step))
        r = subprocess.run([PLUGIN], input=json.dumps(cfg).encode(), capture_output=True,
                           env=dict(env, CNI_COMMAND="ADD", CNI_CONTAINERID="crash",
                                    CNI_NETNS=path, CNI_IFNAME="eth0", CNI_PATH=CNI_PATH))
        how = recoveries[step % 3]
        if how == "DEL":
            rc, out = plugin("DEL", cfg, cid="crash", netns=path)
        elif how == "GC":
            rc, out = plugin("GC", dict(cfg, **{"cni.dev/valid-attachments": []}))
        else:
            rc, out = sh(CLI, "gc", ok=False).returncode, None
        check(rc == 0, f"step {step}: {how} after the kill: {out}")
        if r.returncode == 0:
            break
        check(r.returncode == -9, f"step {step}: ADD was killed ({r.returncode})")
        time.sleep(0.05)
        now = state()
        for link in now["links"]:
            if link not in baseline["links"]:
                wait_gone(link)
        now = state()
        check(now == baseline, f"step {step}: {how} restored the world: "
              + differs(baseline, now))
    print(f"an ADD killed at each of its {step - 1} steps, then undone")
    check(step > 3, f"the ADD went through {step} steps")
    plugin("DEL", cfg, cid="crash", netns=path)
    sh("ip", "netns", "del", "crash")


def test_netcell_gc_knows_attachments():
    path = netns("vanish")
    before = state()
    rc, res = plugin("ADD", conf(), cid="vanish", netns=path)
    check(rc == 0, f"ADD before the container vanishes: {res}")
    sh("ip", "netns", "del", "vanish")
    out = sh(CLI, "gc").stdout
    check("vanished" in out, f"netcell gc names the vanished attachment: {out!r}")
    before["netns"].pop("vanish", None)
    wait_gone(res["interfaces"][0]["name"])
    check(state() == before, "netcell gc removed all of it")


def main():
    make_wan()
    for test in [test_version, test_lifecycle_every_version, test_check_detects_breakage,
                 test_del_without_add_and_gone_netns, test_hostile, test_static_ip_and_mac,
                 test_bandwidth, test_egress_policy, test_egress_domains,
                 test_published_port_and_nat, test_chained_portmap,
                 test_chained_after_another_plugin, test_chained_after_reference_bridge,
                 test_bridged, test_delegated_ipam, test_delegated_ipam_dual_stack, test_ipam_timeout, test_dual_stack,
                 test_bridged_dual_stack,
                 test_netns_netcell_made,
                 test_mtu,
                 test_dns_capability,
                 test_chained_tuning_and_bandwidth, test_status, test_gc,
                 test_interrupted_add, test_netcell_gc_knows_attachments]:
        start = time.time()
        try:
            test()
        except Exception as e:  # a broken step fails the test, the others still run
            check(False, f"{test.__name__} raised {e!r}")
        print(f"{test.__name__}: {time.time() - start:.1f}s", flush=True)
    print(f"{checks} checks, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

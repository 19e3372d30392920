"""The binding's API beyond the lifecycle, on the simulation backend (no privileges, no OS
changes): errors, value types, enums, policies, topologies, spawn, and the type stubs."""

import ast
import inspect
import ipaddress
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest

import netcell
import netcell._netcell as ext

PACKAGE = pathlib.Path(netcell.__file__).parent


@pytest.fixture
def mgr(tmp_path):
    return netcell.NamespaceManager(backend="simulation", run_dir=str(tmp_path / "run"))


# ---- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("code, cls", [
    (netcell.ErrorCode.INVALID_ARGUMENT, netcell.InvalidArgumentError),
    (netcell.ErrorCode.NOT_FOUND, netcell.NotFoundError),
    (netcell.ErrorCode.ALREADY_EXISTS, netcell.AlreadyExistsError),
    (netcell.ErrorCode.CONFLICT, netcell.ConflictError),
    (netcell.ErrorCode.PERMISSION_DENIED, netcell.PermissionDeniedError),
    (netcell.ErrorCode.UNSUPPORTED, netcell.UnsupportedError),
    (netcell.ErrorCode.EXHAUSTED, netcell.ExhaustedError),
    (netcell.ErrorCode.SYSTEM, netcell.SystemCallError),
    (netcell.ErrorCode.CORRUPT, netcell.CorruptError),
])
def test_every_code_has_its_class(code, cls):
    error = netcell._make_error(code, "m", 0, [], "t")
    assert type(error) is cls and isinstance(error, netcell.Error) and error.code == code


def test_failures_raise_the_class_of_their_code(mgr):
    with pytest.raises(netcell.NotFoundError) as missing:
        mgr.info("nope")
    assert isinstance(missing.value, LookupError)
    assert repr(missing.value) == "netcell.NotFoundError(NOT_FOUND, \"namespace 'nope' does not exist\")"
    mgr.create(netcell.NamespaceConfig.full_isolation(name="once"))
    with pytest.raises(netcell.AlreadyExistsError):
        mgr.create(netcell.NamespaceConfig.full_isolation(name="once"))
    with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError too
        netcell.NamespaceConfig(mode="bogus")
    with pytest.raises(netcell.UnsupportedError):
        mgr.spawn("once", ["true"], new_pid_namespace=True)


def test_a_failed_call_changes_nothing(mgr):
    config = netcell.NamespaceConfig.full_isolation(name="closed",
                                                    port_forwards=[netcell.PortForward(80, 80)])
    with pytest.raises(netcell.InvalidArgumentError):
        mgr.create(config)
    assert mgr.list() == []


# ---- value types -----------------------------------------------------------------------------

def test_configs_take_fields_as_keywords_and_compare_by_value():
    a = netcell.NamespaceConfig.private_network(42, name="web", dns=["192.0.2.53"],
                                                egress_bps="10mbit")
    b = netcell.NamespaceConfig("private", name="web", pid=42, dns=["192.0.2.53"],
                                egress_bps=10_000_000)
    assert a == b and a is not b
    b.name = "other"
    assert a != b
    assert a.egress_bps == 10_000_000 and a.dns == [ipaddress.ip_address("192.0.2.53")]
    assert repr(a).startswith("NamespaceConfig(name='web', mode=IsolationMode.PRIVATE, pid=42,")
    assert a.__match_args__[:3] == ("name", "mode", "pid")
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(AttributeError):
        netcell.NamespaceConfig.full_isolation(nmae="typo")
    with pytest.raises(netcell.InvalidArgumentError):
        a.egress_bps = "10mbps"  # byte units are refused as ambiguous
    with pytest.raises(TypeError):
        a.egress_bps = 1.5


def test_enums_are_strs_in_and_out(mgr):
    config = netcell.NamespaceConfig(netcell.IsolationMode.PRIVATE, name="e")
    assert config.mode is netcell.IsolationMode.PRIVATE
    config.mode = "full"
    assert config.mode == "full" and config.mode is netcell.IsolationMode.FULL
    info = mgr.create(config)
    assert info.backend is netcell.Backend.SIMULATION and mgr.backend == "simulation"
    assert str(info.mode) == "full"
    forward = netcell.PortForward(53, 53, netcell.Protocol.UDP)
    assert forward.protocol is netcell.Protocol.UDP and str(forward) == "53:53/udp"
    with pytest.raises(TypeError):
        config.mode = 3


def test_infos_are_dataclass_like(mgr):
    info = mgr.create(netcell.NamespaceConfig.private_network(os.getpid(), name="p"))
    assert info == mgr.info("p") and info != mgr.create(
        netcell.NamespaceConfig.private_network(name="q"))
    assert repr(info).startswith("NamespaceInfo(name='p', mode=IsolationMode.PRIVATE,")
    assert isinstance(info.address, ipaddress.IPv4Address)
    assert info.address in ipaddress.ip_network("10.209.0.0/16")
    (eth0,) = [i for i in info.interfaces if i.name == "eth0"]
    assert eth0 != info.interfaces[0] and eth0 == mgr.info("p").interfaces[1]
    assert repr(eth0) == (f"InterfaceInfo(name='eth0', addresses=[{eth0.addresses[0]!r}, "
                          f"{eth0.addresses[1]!r}], mtu=1500)")
    stats = mgr.stats("p")
    assert stats == mgr.stats("p") and stats.total.name == "total"
    assert repr(stats.total).startswith("InterfaceStats(name='total', rx_bytes=")


def test_networks(mgr):
    network = mgr.create_network("lab", ipaddress.ip_network("10.60.0.0/24"), nat=True)
    assert (network.name, network.bridged, network.nat) == ("lab", True, True)
    assert network.gateway == ipaddress.ip_address("10.60.0.1")
    assert network in mgr.list_networks()
    with pytest.raises(netcell.InvalidArgumentError):
        mgr.create_network("bad", "10.61.0.0")
    mgr.remove_network("lab")
    assert "lab" not in [n.name for n in mgr.list_networks()]


def test_dual_stack_networks(mgr):
    network = mgr.create_network("lab6", "10.62.0.0/24", subnet6="fd00:62::/64")
    assert network.subnet6 == ipaddress.ip_network("fd00:62::/64")
    assert network.gateway6 == ipaddress.ip_address("fd00:62::1")
    assert network in mgr.list_networks()
    info = mgr.create(netcell.NamespaceConfig.bridged(os.getpid(), "lab6", name="b"))
    (eth0,) = [i for i in info.interfaces if i.name == "eth0"]
    v4, v6 = [a for a in eth0.addresses if a.version == 4], [a for a in eth0.addresses
                                                                if a.version == 6]
    assert len(v4) == 1 and len(v6) == 1
    offset = int(v4[0].ip) - int(ipaddress.ip_address("10.62.0.0"))
    assert v6[0] == ipaddress.ip_interface(f"fd00:62::{offset:x}/64")
    plain = mgr.create_network("lab4", "10.65.0.0/24")
    assert plain.subnet6 is None and plain.gateway6 is None
    with pytest.raises(netcell.InvalidArgumentError):
        mgr.create_network("bad6", "10.63.0.0/24", subnet6="10.64.0.0/24")
    with pytest.raises(netcell.ConflictError):
        mgr.create_network("again6", "10.66.0.0/24", subnet6="fd00:62::/64")
    assert not {"bad6", "again6"} & {n.name for n in mgr.list_networks()}


def test_rates():
    assert netcell.parse_rate("2.5mbit") == 2_500_000
    assert netcell.format_rate(2_500_000) == "2.5mbit"
    with pytest.raises(netcell.InvalidArgumentError):
        netcell.parse_rate("fast")


# ---- policies --------------------------------------------------------------------------------

def test_policy_rules_parse_and_normalise():
    policy = netcell.EgressPolicy("deny", allow=["10.99.0.5:5432/tcp", "*.example.com:443"],
                                  deny=["10.99.0.0/16"])
    assert policy.default_action is netcell.PolicyAction.DENY
    allow, deny = policy.rules
    assert (allow.action, allow.destination, allow.protocol, allow.ports) == (
        "allow", ipaddress.ip_network("10.99.0.5/32"), "tcp", (5432, 5432))
    assert str(allow) == "10.99.0.5/32:5432/tcp"
    assert deny.action == "deny" and deny.ports is None and deny.protocol == "any"
    (domain,) = policy.domains
    assert (domain.pattern, domain.ports) == ("*.example.com", (443, 443))
    assert policy.name_allowed("www.example.com") and not policy.name_allowed("example.org")
    assert policy == netcell.EgressPolicy("deny").allow("10.99.0.5:5432/tcp").allow(
        "*.example.com:443").deny("10.99.0.0/16")
    assert netcell.EgressRule("10.99.0.5:5432/tcp") == allow
    with pytest.raises(netcell.InvalidArgumentError):
        netcell.EgressRule("10.99.0.1/16")  # host bits set
    with pytest.raises(netcell.InvalidArgumentError):
        netcell.EgressPolicy(allow=["10.0.0.0/8", "10.0.0.0/8"])  # duplicate


def test_policy_files(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("default: deny\nallow: ['192.0.2.0/24:80/tcp', 'pypi.org:443/tcp']\n")
    policy = netcell.EgressPolicy.load(str(path))
    assert [str(r) for r in policy.rules] == ["192.0.2.0/24:80/tcp"]
    assert netcell.EgressPolicy.parse(path.read_text()) == policy
    with pytest.raises(netcell.InvalidArgumentError) as bad:
        netcell.EgressPolicy.parse("default: maybe\n", "p.yaml")
    assert "p.yaml:1" in str(bad.value)


def test_policy_on_a_namespace(mgr):
    policy = netcell.EgressPolicy("deny", allow=["192.0.2.10:443/tcp"])
    info = mgr.create(netcell.NamespaceConfig.private_network(name="pol", egress=policy))
    assert info.egress == policy
    assert mgr.set_egress("pol", None).egress is None
    assert mgr.set_egress("pol", policy).egress == policy
    with pytest.raises(netcell.UnsupportedError):  # only the kernel counts
        mgr.egress_counters("pol")
    with pytest.raises(netcell.NotFoundError):
        mgr.set_egress("nope", policy)


# ---- topologies ------------------------------------------------------------------------------

TOPOLOGY = {
    "name": "pytopo",
    "networks": {"lan": {"subnet": "10.70.0.0/24"}},
    "namespaces": {
        "web": {"mode": "bridged", "network": "lan"},
        "db": {"mode": "bridged", "network": "lan"},
        "box": {"mode": "full"},
    },
}


def test_topology_up_and_down(mgr, tmp_path):
    topology = netcell.Topology.from_dict(TOPOLOGY)
    assert (topology.name, topology.namespaces, topology.networks) == (
        "pytopo", ["web", "db", "box"], ["lan"])
    assert topology.config("web").network == "lan"
    plan = mgr.up(topology, dry_run=True)
    assert mgr.list() == [] and plan.changed == 0
    report = mgr.up(topology)
    assert {(s.action, s.kind, s.object) for s in report.steps} >= {
        ("create", "network", "lan"), ("create", "namespace", "web")}
    assert sorted(i.name for i in mgr.list()) == ["box", "db", "web"]
    assert {i.topology for i in mgr.list()} == {"pytopo"}
    again = mgr.up(topology)
    assert again.changed == 0  # idempotent
    mgr.down(topology)
    assert mgr.list() == []
    with mgr.topology(netcell.Topology.load(str(write(tmp_path, TOPOLOGY)))):
        assert len(mgr.list()) == 3
    assert mgr.list() == [] and "lan" not in [n.name for n in mgr.list_networks()]


def write(tmp_path, declaration):
    import json
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps(declaration))
    return path


def test_topology_errors_list_every_issue():
    text = "name: t\nnamespaces:\n  a: {mode: bogus}\n  b: {colour: red}\n"
    with pytest.raises(netcell.TopologyError) as bad:
        netcell.Topology.parse(text, "t.yaml")
    issues = bad.value.issues
    assert [(i.file, i.line, i.field) for i in issues] == [
        ("t.yaml", 3, "namespaces.a.mode"), ("t.yaml", 4, "namespaces.b.colour")]
    assert str(issues[0]).startswith("t.yaml:3: namespaces.a.mode: ")
    assert isinstance(bad.value, netcell.InvalidArgumentError)
    assert bad.value.code == netcell.ErrorCode.INVALID_ARGUMENT
    with pytest.raises(netcell.TopologyError):
        netcell.Topology.load("/nonexistent/t.yaml")


# ---- processes -------------------------------------------------------------------------------

def test_spawn_with_pipes(mgr):
    mgr.create(netcell.NamespaceConfig.full_isolation(name="s"))
    read_end, write_end = os.pipe()
    with mgr.spawn("s", ["sh", "-c", "read x; echo got $x; exit 3"], stdin=read_end,
                   stdout=write_end) as child:
        pass
    # Leaving the block killed it: it was still waiting for input.
    assert child.returncode == 128 + signal.SIGKILL
    os.close(read_end)
    os.close(write_end)

    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    child = mgr.spawn("s", ["sh", "-c", "read x; echo got $x; exit 3"], stdin=in_r, stdout=out_w)
    os.close(in_r)
    os.close(out_w)
    assert child.poll() is None and child.returncode is None
    os.write(in_w, b"hello\n")
    os.close(in_w)
    assert child.wait(timeout=10) == 3 and child.returncode == 3
    assert os.read(out_r, 100) == b"got hello\n"
    os.close(out_r)
    assert repr(child) == f"<Child pid={child.pid} returncode=3>"


def test_wait_times_out_and_signals_end_it(mgr):
    mgr.create(netcell.NamespaceConfig.full_isolation(name="s"))
    child = mgr.spawn("s", ["sleep", "30"])
    with pytest.raises(TimeoutError):
        child.wait(timeout=0.2)
    child.terminate()
    assert child.wait(timeout=10) == 128 + signal.SIGTERM
    child.kill()  # a no-op once it has ended


def test_run_is_subprocess_run(mgr):
    mgr.create(netcell.NamespaceConfig.full_isolation(name="r"))
    done = mgr.run("r", ["sh", "-c", "echo out; echo err >&2; exit 2"], capture_output=True)
    assert (done.returncode, done.stdout, done.stderr) == (2, b"out\n", b"err\n")
    with pytest.raises(subprocess.CalledProcessError):
        mgr.run("r", ["false"], check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        mgr.run("r", ["sleep", "30"], timeout=0.2, capture_output=True)
    fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(netcell.NotFoundError) as missing:
        mgr.run("r", ["netcell-no-such-command"], capture_output=True)
    assert missing.value.errno == 2 and "netcell-no-such-command" in str(missing.value)
    assert set(os.listdir("/proc/self/fd")) == fds  # no pipe left open
    with pytest.raises(TypeError):
        mgr.spawn("r", "echo not a list")
    with pytest.raises(netcell.InvalidArgumentError):
        mgr.spawn("r", ["true"], init=True)


def test_namespace_context_manager(mgr):
    with mgr.namespace(netcell.NamespaceConfig.full_isolation(name="ctx")) as info:
        assert info.name == "ctx" and mgr.exists("ctx")
    assert not mgr.exists("ctx")
    with pytest.raises(RuntimeError):
        with mgr.namespace(netcell.NamespaceConfig.full_isolation(name="ctx")):
            raise RuntimeError("the block failed")
    assert not mgr.exists("ctx")


def test_gc_removes_namespaces_whose_owner_ended(mgr):
    owner = subprocess.Popen(["sleep", "30"])
    mgr.create(netcell.NamespaceConfig.full_isolation(owner.pid, name="owned"))
    mgr.create(netcell.NamespaceConfig.full_isolation(name="kept"))
    assert mgr.gc() == mgr.gc()  # nothing to do, twice
    owner.kill()
    owner.wait()
    report = mgr.gc()
    assert any("owned" in line for line in report.removed) and report.errors == []
    assert [i.name for i in mgr.list()] == ["kept"]
    assert mgr.service_status().running is False


# ---- docs and stubs --------------------------------------------------------------------------

def public_names(obj):
    return {n for n in vars(obj) if not n.startswith("_")}


def stub_tree():
    return ast.parse((PACKAGE / "_netcell.pyi").read_text())


def test_every_public_name_has_a_stub_and_every_stub_a_name():
    tree = stub_tree()
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    module = {n for n in dir(ext) if not n.startswith("__")}
    bound_classes = {n for n in module if isinstance(getattr(ext, n), type)}
    bound_functions = module - bound_classes
    assert bound_classes == set(classes) - {"_HasFileno"}
    assert bound_functions == functions
    for name in bound_classes:
        members = {item.name if isinstance(item, ast.FunctionDef) else item.target.id
                   for item in classes[name].body
                   if isinstance(item, (ast.FunctionDef, ast.AnnAssign))}
        own = public_names(getattr(ext, name))
        if name == "ErrorCode":
            own = set(getattr(ext, name).__members__) | {"name", "value"}
        stubbed = {m for m in members if not m.startswith("_")}
        assert own == stubbed, f"{name}: bound, not stubbed: {own - stubbed}; " \
                               f"stubbed, not bound: {stubbed - own}"
        if "__eq__" in vars(getattr(ext, name)) and name != "ErrorCode":
            assert "__eq__" in members, f"{name}: __eq__ is not stubbed"


def test_the_package_exports_what_it_says():
    assert sorted(netcell.__all__) == netcell.__all__
    for name in netcell.__all__:
        assert hasattr(netcell, name), name
    exported = set(netcell.__all__)
    assert {n for n in dir(ext) if not n.startswith("_")} <= exported


def test_everything_public_has_a_docstring():
    for name in netcell.__all__:
        value = getattr(netcell, name)
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"
        if isinstance(value, type):
            for member, attribute in vars(value).items():
                if member.startswith("_") and member not in ("__init__", "__eq__", "__repr__"):
                    continue
                if isinstance(attribute, (staticmethod, classmethod)):
                    attribute = attribute.__func__
                if callable(attribute) or isinstance(attribute, property):
                    if member in ("__init__",) and value.__module__ != "netcell._netcell":
                        continue
                    if issubclass(value, BaseException) or issubclass(value, str) or \
                            value is netcell.ErrorCode:
                        continue
                    assert (attribute.__doc__ or "").strip(), f"{name}.{member} has no docstring"


@pytest.mark.skipif(shutil.which("mypy") is None and not (
    pathlib.Path("/usr/lib/python3/dist-packages/mypy").exists()), reason="mypy is not installed")
def test_mypy_accepts_the_stubs_and_the_examples():
    examples = pathlib.Path(__file__).resolve().parent.parent / "examples"
    assert len(list(examples.glob("*.py"))) == 4
    done = subprocess.run(
        ["/usr/bin/python3", "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", os.devnull, str(PACKAGE), *map(str, sorted(examples.glob("*.py")))],
        capture_output=True, text=True, cwd=PACKAGE.parent,
        env={**os.environ, "MYPYPATH": str(PACKAGE.parent)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_released_child_outlives_its_object(mgr):
    mgr.create(netcell.NamespaceConfig.full_isolation(name="rel"))
    child = mgr.spawn("rel", ["sleep", "30"])
    pid = child.release()
    assert pid > 0 and repr(child) == f"<Child pid={pid} released>"
    with pytest.raises(netcell.InvalidArgumentError):
        child.poll()
    del child
    os.kill(pid, 0)  # still running once its object is gone
    os.kill(pid, signal.SIGKILL)
    assert os.waitpid(pid, 0)[0] == pid


def test_a_collected_child_is_killed(mgr):
    mgr.create(netcell.NamespaceConfig.full_isolation(name="gone"))
    child = mgr.spawn("gone", ["sleep", "30"])
    pid = child.pid
    child.send_signal(0)
    del child  # killed and reaped: the pid is no longer ours
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

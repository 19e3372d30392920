"""The tutorial's exercises (python/examples/), run in a throwaway world (tests/support/world.sh)
and checked with views independent of the binding: `ip -j`, `tc -j`, real traffic, and what the
processes inside report about themselves."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

import netcell

pytestmark = pytest.mark.skipif(
    os.environ.get("NETCELL_TEST_WORLD") != "1",
    reason="needs a throwaway world: tests/support/world.sh python3 -m pytest ...",
)

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ip_json(*args):
    out = subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def netns_names():
    return {entry["name"] for entry in ip_json("netns", "list")}


def host_links():
    return {link["ifname"] for link in ip_json("link", "show")}


@pytest.fixture
def mgr():
    before = (netns_names(), host_links())
    manager = netcell.NamespaceManager(backend="linux")
    yield manager
    # Nothing an example made outlives it: no namespace, no host-side link (the kernel deletes the
    # host ends of unmounted namespaces asynchronously: wait for that, at most 5 s).
    assert manager.list() == []
    give_up = time.monotonic() + 5
    while (netns_names(), host_links()) != before and time.monotonic() < give_up:
        time.sleep(0.05)
    assert (netns_names(), host_links()) == before


def test_http_server_published_on_localhost(mgr):
    seen = {}

    def observe(info):
        # The kernel's view: the namespace has the address netcell reports, and a server listens.
        (eth0,) = [l for l in ip_json("-n", info.name, "addr", "show", "dev", "eth0")]
        seen["addresses"] = {f"{a['local']}/{a['prefixlen']}" for a in eth0["addr_info"]}
        seen["listening"] = subprocess.run(
            ["ip", "netns", "exec", info.name, "ss", "-Htln", "sport = :8000"],
            capture_output=True, text=True, check=True).stdout

    result = example("http_server").main(mgr, observe)
    assert result["body"] == "hello from pyhttp\n"
    assert result["server_in"] == "pyhttp"
    assert any(a.startswith(result["address"] + "/") for a in seen["addresses"])
    assert ":8000" in seen["listening"]
    with pytest.raises(OSError):  # the published port went with the namespace
        example("http_server").fetch("http://127.0.0.1:8080/", deadline_s=0)


def test_three_namespaces_with_controlled_access(mgr):
    seen = {}

    def observe(nodes):
        # The three veths' host ends are ports of the network's bridge, as `ip -j` says.
        bridge = next(n.bridge for n in mgr.list_networks() if n.name == "pylab")
        seen["ports"] = {l["ifname"] for l in ip_json("link", "show", "master", bridge)}
        seen["hosts"] = {info.host_interface for info in nodes.values()}
        seen["addresses"] = {
            name: {a["local"] for l in ip_json("-n", name, "addr", "show", "dev", "eth0")
                   for a in l["addr_info"]} for name in nodes}
        seen["nodes"] = nodes

    result = example("three_namespaces").main(mgr, observe)
    assert seen["hosts"] <= seen["ports"]
    for name, info in seen["nodes"].items():
        assert str(info.address) in seen["addresses"][name]
    assert result["a->b"] and result["b->a"] and result["c->a"]
    assert result["c->b"] is False
    assert result["c allowed to a (packets)"] >= 1
    assert result["c->b without the policy"] is True
    assert "pylab" not in {n.name for n in mgr.list_networks()}


def test_bandwidth_limit_is_measured(mgr):
    seen = {}

    def observe(info):
        seen["qdiscs"] = ip_json("-n", info.name, "link", "show", "dev", "eth0")
        out = subprocess.run(["tc", "-j", "-n", info.name, "qdisc", "show", "dev", "eth0"],
                             capture_output=True, text=True, check=True).stdout
        seen["tc"] = json.loads(out)

    result = example("bandwidth").main(mgr, observe)
    limit = netcell.parse_rate("16mbit")
    assert result["limit_bps"] == limit
    # The kernel shapes eth0's egress with a token bucket at the limit.
    (tbf,) = [q for q in seen["tc"] if q["kind"] == "tbf"]
    assert tbf["options"]["rate"] * 8 == limit
    assert result["bytes"] == 4_000_000
    # Real traffic: the transfer runs near the limit, not at the veth's line rate.
    assert 0.7 * limit < result["rate_bps"] < 1.15 * limit, result
    assert result["tx_bytes"] >= 4_000_000


def test_pid_and_network_namespace(mgr):
    seen = {}

    def observe(info):
        seen["links"] = [l["ifname"] for l in ip_json("-n", info.name, "link", "show")]

    result = example("pid_namespace").main(mgr, observe)
    assert result["pid"] == 1
    assert result["processes"] == [1]
    assert result["devices"] == ["lo"]
    assert result["interfaces"] == ["lo"]
    assert seen["links"] == ["lo"]


@pytest.mark.parametrize("name", ["http_server", "three_namespaces", "bandwidth", "pid_namespace"])
def test_example_runs_as_a_program(name):
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), dict)
    assert netns_names() == set()

"""The binding's lifecycle on the simulation backend: no privileges, no OS changes."""

import ipaddress
import os

import pytest

import netcell


@pytest.fixture
def mgr(tmp_path):
    return netcell.NamespaceManager.open(backend="simulation", run_dir=str(tmp_path / "run"))


def named(config, name):
    config.name = name
    return config


def test_manager_reports_its_backend(mgr):
    assert mgr.backend == "simulation"
    assert mgr.list() == []


def test_full_isolation_lifecycle(mgr):
    info = mgr.create(named(netcell.NamespaceConfig.full_isolation(os.getpid()), "sandbox"))
    assert isinstance(info, netcell.NamespaceInfo)
    assert (info.name, info.mode, info.backend) == ("sandbox", "full", "simulation")
    assert info.enforced is False
    assert info.owner_pid == os.getpid()
    assert [i.name for i in info.interfaces] == ["lo"]
    assert mgr.exists("sandbox")
    assert mgr.info("sandbox") == info
    assert [i.name for i in mgr.list()] == ["sandbox"]
    assert mgr.find_by_pid(os.getpid()).name == "sandbox"
    stats = mgr.stats("sandbox")
    assert stats.name == "sandbox" and stats.total.name == "total"
    mgr.destroy("sandbox")
    assert not mgr.exists("sandbox")
    assert mgr.list() == []


def test_default_name_comes_from_the_pid(mgr):
    info = mgr.create(netcell.NamespaceConfig.full_isolation(os.getpid()))
    assert info.name == f"pid-{os.getpid()}"


def test_private_namespace_addresses_are_ipaddress_objects(mgr):
    config = named(netcell.NamespaceConfig.private_network(os.getpid()), "web")
    config.port_forwards = [netcell.PortForward(8080, 80), netcell.PortForward(5353, 53, "udp")]
    config.dns = ["203.0.113.2", ipaddress.ip_address("2001:db8::53")]
    config.egress_bps = 10_000_000
    info = mgr.create(config)
    assert info.mode == "private"
    assert isinstance(info.gateway, ipaddress.IPv4Address)
    eth0 = next(i for i in info.interfaces if i.name == "eth0")
    address, address6 = eth0.addresses  # dual stack
    assert isinstance(address6, ipaddress.IPv6Interface)
    assert address6.network.prefixlen == 64
    assert info.address6 == address6.ip and info.gateway6 in address6.network
    assert info.ipv4_only is None
    assert isinstance(address, ipaddress.IPv4Interface)
    assert address.network.prefixlen == 30
    assert info.gateway in address.network
    assert address in info.addresses
    assert info.dns == [ipaddress.ip_address("203.0.113.2"), ipaddress.ip_address("2001:db8::53")]
    assert [str(f) for f in info.port_forwards] == ["8080:80/tcp", "5353:53/udp"]
    assert info.port_forwards[1].protocol == "udp"
    assert info.egress_bps == 10_000_000 and info.ingress_bps is None
    assert info.host_interface


def test_interface_config(mgr):
    config = named(netcell.NamespaceConfig.private_network(), "custom")
    config.interface = netcell.InterfaceConfig(name="wan0", mtu=1400)
    info = mgr.create(config)
    wan0 = next(i for i in info.interfaces if i.name == "wan0")
    assert wan0.mtu == 1400


def test_bridged_namespace_on_a_network(mgr):
    network = mgr.create_network("lab", "10.50.0.0/24")
    assert network.subnet == ipaddress.ip_network("10.50.0.0/24")
    info = mgr.create(named(netcell.NamespaceConfig.bridged(0, "lab"), "node1"))
    assert (info.mode, info.network) == ("bridged", "lab")
    with pytest.raises(netcell.Error) as busy:
        mgr.remove_network("lab")
    assert busy.value.code == netcell.ErrorCode.CONFLICT
    mgr.destroy("node1")
    mgr.remove_network("lab")


@pytest.mark.parametrize("name", ["../etc", "-x", "a/b", "x" * 65, ".."])
def test_bad_name_raises_invalid_argument(mgr, name):
    with pytest.raises(netcell.Error) as error:
        mgr.create(named(netcell.NamespaceConfig.full_isolation(), name))
    assert error.value.code == netcell.ErrorCode.INVALID_ARGUMENT
    assert error.value.code.name == "INVALID_ARGUMENT"
    assert "invalid namespace name" in str(error.value)
    assert mgr.list() == []


def test_errors_carry_their_code(mgr):
    with pytest.raises(netcell.Error) as missing:
        mgr.info("nope")
    assert missing.value.code == netcell.ErrorCode.NOT_FOUND
    assert missing.value.message == "namespace 'nope' does not exist"
    assert isinstance(missing.value, Exception)

    with pytest.raises(netcell.Error) as missing:
        mgr.destroy("nope")
    assert missing.value.code == netcell.ErrorCode.NOT_FOUND

    mgr.create(named(netcell.NamespaceConfig.full_isolation(), "twice"))
    with pytest.raises(netcell.Error) as taken:
        mgr.create(named(netcell.NamespaceConfig.full_isolation(), "twice"))
    assert taken.value.code == netcell.ErrorCode.ALREADY_EXISTS

    with pytest.raises(netcell.Error) as bad:
        netcell.NamespaceManager.open(backend="bogus")
    assert bad.value.code == netcell.ErrorCode.INVALID_ARGUMENT

    with pytest.raises(netcell.Error) as bad:
        netcell.PortForward(8080, 80, "sctp")
    assert bad.value.code == netcell.ErrorCode.INVALID_ARGUMENT

    config = netcell.NamespaceConfig.private_network()
    with pytest.raises(netcell.Error) as bad:
        config.dns = ["not-an-address"]
    assert bad.value.code == netcell.ErrorCode.INVALID_ARGUMENT


def test_full_isolation_refuses_published_ports(mgr):
    config = named(netcell.NamespaceConfig.full_isolation(), "closed")
    config.port_forwards = [netcell.PortForward(8080, 80)]
    with pytest.raises(netcell.Error) as error:
        mgr.create(config)
    assert error.value.code == netcell.ErrorCode.INVALID_ARGUMENT
    assert not mgr.exists("closed")


def test_state_is_shared_through_the_run_dir(tmp_path):
    run_dir = str(tmp_path / "run")
    first = netcell.NamespaceManager(backend="simulation", run_dir=run_dir)
    first.create(named(netcell.NamespaceConfig.shared(), "host"))
    second = netcell.NamespaceManager(backend="simulation", run_dir=run_dir)
    assert [i.mode for i in second.list()] == ["shared"]


def test_port_forward_parse_and_fields():
    forward = netcell.PortForward.parse("127.0.0.1:8443:443/tcp")
    assert (forward.host_port, forward.container_port, forward.protocol) == (8443, 443, "tcp")
    assert forward.host_ip == ipaddress.ip_address("127.0.0.1")
    assert forward == netcell.PortForward(8443, 443, host_ip="127.0.0.1")
    with pytest.raises(netcell.Error):
        netcell.PortForward.parse("nope")

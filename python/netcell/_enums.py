"""The str enums netcell's values come back as.

Each member is a ``str`` equal to netcell's own spelling (``IsolationMode.PRIVATE == "private"``),
so a plain string is accepted wherever one of them is set and compares equal to the member.
"""

from __future__ import annotations

import enum

__all__ = ["Backend", "DnsRefusal", "IsolationMode", "PolicyAction", "PolicyProtocol", "Protocol"]


class _StrEnum(str, enum.Enum):
    """A str enum whose str() is its value ("private"), as netcell spells it."""

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class IsolationMode(_StrEnum):
    """What a namespace's network is."""

    FULL = "full"
    """A new network namespace with only lo: nothing is reachable."""
    PRIVATE = "private"
    """A veth to the host, NAT, DNS and published ports."""
    SHARED = "shared"
    """The host's own network, recorded and tracked."""
    BRIDGED = "bridged"
    """A port on a named network's bridge."""


class Protocol(_StrEnum):
    """A published port's protocol."""

    TCP = "tcp"
    UDP = "udp"


class Backend(_StrEnum):
    """What a manager drives: the kernel, or an in-memory model that changes nothing."""

    LINUX = "linux"
    SIMULATION = "simulation"


class PolicyAction(_StrEnum):
    """What an egress rule, or a policy's default, does."""

    ALLOW = "allow"
    DENY = "deny"


class PolicyProtocol(_StrEnum):
    """The protocol an egress rule matches (ANY with ports: tcp and udp)."""

    ANY = "any"
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


class DnsRefusal(_StrEnum):
    """How netcell's resolver answers a name a policy does not allow."""

    REFUSED = "refused"
    NXDOMAIN = "nxdomain"

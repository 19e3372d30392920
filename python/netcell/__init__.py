"""netcell: network namespaces with isolation modes, from Python.

The lifecycle API of netcell's C++ library (``NamespaceManager`` in
``include/netcell/manager.h``)::

    import os, netcell
    mgr = netcell.NamespaceManager.create(backend="simulation", run_dir="/tmp/nc")
    cfg = netcell.NamespaceConfig.private_network(os.getpid())
    cfg.name = "web"
    cfg.port_forwards = [netcell.PortForward(8080, 80)]
    info = mgr.create(cfg)          # NamespaceInfo
    info.addresses                  # [IPv4Interface('10.209.0.2/30')]
    mgr.destroy("web")

Every failing call raises :class:`Error`, whose ``code`` is an :class:`ErrorCode`.
"""

from __future__ import annotations

from typing import Iterable, List

from ._netcell import (
    ErrorCode,
    InterfaceConfig,
    InterfaceInfo,
    InterfaceStats,
    NamespaceConfig,
    NamespaceInfo,
    NamespaceManager,
    NamespaceStats,
    NetworkInfo,
    PortForward,
    _set_error_class,
)

__all__ = [
    "Error",
    "ErrorCode",
    "InterfaceConfig",
    "InterfaceInfo",
    "InterfaceStats",
    "NamespaceConfig",
    "NamespaceInfo",
    "NamespaceManager",
    "NamespaceStats",
    "NetworkInfo",
    "PortForward",
]


class Error(Exception):
    """A failed netcell call.

    Attributes:
        code: what kind of failure (:class:`ErrorCode`, e.g. ``ErrorCode.NOT_FOUND``).
        message: the innermost message.
        errno: the errno it came from, 0 if none.
        context: the layers of context it crossed, innermost first.
        text: the whole line as netcell prints it (also ``str(error)``).
    """

    code: ErrorCode
    message: str
    errno: int
    context: List[str]
    text: str

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        errno: int = 0,
        context: Iterable[str] = (),
        text: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.errno = errno
        self.context = list(context)
        self.text = text if text is not None else message
        super().__init__(self.text)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"netcell.Error({self.code.name}, {self.text!r})"


_set_error_class(Error)
del _set_error_class

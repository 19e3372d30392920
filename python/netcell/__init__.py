"""netcell: network namespaces with isolation modes, from Python.

The API of netcell's C++ library (``include/netcell/``)::

    import os, netcell
    mgr = netcell.NamespaceManager(backend="linux")     # or "auto", "simulation"
    cfg = netcell.NamespaceConfig.private_network(os.getpid(), name="web")
    cfg.port_forwards = [netcell.PortForward(8080, 80)]
    with mgr.namespace(cfg) as info:                   # destroyed when the block ends
        info.addresses                                  # [IPv4Interface('10.209.0.2/30'), ...]
        done = mgr.run("web", ["ip", "-br", "addr"], capture_output=True)
        with mgr.spawn("web", ["python3", "-m", "http.server", "80"]) as server:
            ...                                         # killed when the block ends

Every failing call raises a subclass of :class:`Error` (``NotFoundError``,
``InvalidArgumentError``, ...), whose ``code`` is the :class:`ErrorCode`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Type

from ._enums import Backend, DnsRefusal, IsolationMode, PolicyAction, PolicyProtocol, Protocol
from ._netcell import (
    Child,
    DomainRule,
    EgressCounters,
    EgressPolicy,
    EgressRule,
    ErrorCode,
    GcReport,
    InterfaceConfig,
    InterfaceInfo,
    InterfaceStats,
    LearnedDestination,
    NamespaceConfig,
    NamespaceInfo,
    NamespaceManager,
    NamespaceStats,
    NetworkInfo,
    PolicyCounter,
    PortForward,
    ServiceStatus,
    Topology,
    TopologyIssue,
    TopologyReport,
    TopologyStep,
    _set_error_factory,
    format_rate,
    parse_rate,
)

__all__ = [
    "AlreadyExistsError",
    "Backend",
    "Child",
    "ConflictError",
    "CorruptError",
    "DnsRefusal",
    "DomainRule",
    "EgressCounters",
    "EgressPolicy",
    "EgressRule",
    "Error",
    "ErrorCode",
    "ExhaustedError",
    "GcReport",
    "InterfaceConfig",
    "InterfaceInfo",
    "InterfaceStats",
    "InvalidArgumentError",
    "IsolationMode",
    "LearnedDestination",
    "NamespaceConfig",
    "NamespaceInfo",
    "NamespaceManager",
    "NamespaceStats",
    "NetworkInfo",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyAction",
    "PolicyCounter",
    "PolicyProtocol",
    "PortForward",
    "Protocol",
    "ServiceStatus",
    "SystemCallError",
    "Topology",
    "TopologyError",
    "TopologyIssue",
    "TopologyReport",
    "TopologyStep",
    "UnsupportedError",
    "format_rate",
    "parse_rate",
]


class Error(Exception):
    """A failed netcell call; each ErrorCode has its subclass (``NotFoundError``, ...).

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
        text: Optional[str] = None,
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
        return f"netcell.{type(self).__name__}({self.code.name}, {self.text!r})"


class InvalidArgumentError(Error, ValueError):
    """The caller's input is malformed or out of range (ErrorCode.INVALID_ARGUMENT)."""


class NotFoundError(Error, LookupError):
    """A named namespace, network or process does not exist (ErrorCode.NOT_FOUND)."""


class AlreadyExistsError(Error):
    """A name or resource is taken (ErrorCode.ALREADY_EXISTS)."""


class ConflictError(Error):
    """The request collides with existing state: a port, an address, in use (CONFLICT)."""


class PermissionDeniedError(Error):
    """Missing privilege: CAP_NET_ADMIN, CAP_SYS_ADMIN (ErrorCode.PERMISSION_DENIED)."""


class UnsupportedError(Error):
    """Not available with this backend, kernel or build (ErrorCode.UNSUPPORTED)."""


class ExhaustedError(Error):
    """An address pool or similar resource is used up (ErrorCode.EXHAUSTED)."""


class SystemCallError(Error):
    """A system call or kernel request failed (ErrorCode.SYSTEM); ``errno`` says which."""


class CorruptError(Error):
    """A state record could not be read back (ErrorCode.CORRUPT)."""


class TopologyError(InvalidArgumentError):
    """A topology file with problems: ``issues`` lists every one (:class:`TopologyIssue`)."""

    issues: List[TopologyIssue]

    def __init__(self, *args: object, issues: Iterable[TopologyIssue] = (), **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.issues = list(issues)


_ERRORS: Dict[ErrorCode, Type[Error]] = {
    ErrorCode.INVALID_ARGUMENT: InvalidArgumentError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.ALREADY_EXISTS: AlreadyExistsError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.PERMISSION_DENIED: PermissionDeniedError,
    ErrorCode.UNSUPPORTED: UnsupportedError,
    ErrorCode.EXHAUSTED: ExhaustedError,
    ErrorCode.SYSTEM: SystemCallError,
    ErrorCode.CORRUPT: CorruptError,
}


def _make_error(
    code: ErrorCode,
    message: str,
    errno: int,
    context: List[str],
    text: str,
    issues: Optional[List[TopologyIssue]] = None,
) -> Error:
    """The exception a failing call raises (the extension calls it)."""
    if issues is not None:
        return TopologyError(code, message, errno, context, text, issues=issues)
    return _ERRORS.get(code, Error)(code, message, errno, context, text)


_set_error_factory(_make_error)
del _set_error_factory


@contextlib.contextmanager
def _namespace(
    self: NamespaceManager, config: NamespaceConfig, kill_processes: bool = True
) -> Iterator[NamespaceInfo]:
    """Creates the namespace for a with block and destroys it when the block ends.

    Yields its :class:`NamespaceInfo`. On the way out every process still inside is killed
    (``kill_processes=False`` leaves them, without a network path); a namespace the block already
    destroyed is fine.
    """
    info = self.create(config)
    try:
        yield info
    finally:
        try:
            self.destroy(info.name, kill_processes=kill_processes)
        except NotFoundError:
            pass


@contextlib.contextmanager
def _topology(
    self: NamespaceManager, topology: Topology, log_dir: Optional[str] = None
) -> Iterator[TopologyReport]:
    """Brings a topology up for a with block (yielding up()'s report) and down when it ends."""
    report = self.up(topology, log_dir=log_dir)
    try:
        yield report
    finally:
        self.down(topology, log_dir=log_dir)


def _run(
    self: NamespaceManager,
    name: str,
    argv: Sequence[str],
    *,
    capture_output: bool = False,
    timeout: Optional[float] = None,
    check: bool = False,
    new_pid_namespace: bool = False,
    init: bool = False,
) -> "subprocess.CompletedProcess[bytes]":
    """Runs argv inside the namespace to its end, as ``subprocess.run`` does.

    Returns a ``subprocess.CompletedProcess`` (``stdout``/``stderr`` bytes with
    ``capture_output``, else None). ``timeout`` (seconds): the process is killed and
    ``subprocess.TimeoutExpired`` raised. ``check``: ``subprocess.CalledProcessError`` on a
    non-zero exit.
    """
    args = list(argv)
    deadline = None if timeout is None else time.monotonic() + timeout
    pipes = [os.pipe(), os.pipe()] if capture_output else []
    try:
        child = self.spawn(
            name,
            args,
            new_pid_namespace=new_pid_namespace,
            init=init,
            stdout=pipes[0][1] if pipes else None,
            stderr=pipes[1][1] if pipes else None,
        )
    except BaseException:
        for read_end, _ in pipes:
            os.close(read_end)
        raise
    finally:
        for _, write_end in pipes:
            os.close(write_end)
    with child, contextlib.ExitStack() as closing:
        output: Dict[int, bytearray] = {}
        if pipes:
            selector = closing.enter_context(selectors.DefaultSelector())
            for read_end, _ in pipes:
                closing.callback(os.close, read_end)
                output[read_end] = bytearray()
                selector.register(read_end, selectors.EVENT_READ)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                for key, _ in selector.select(left):
                    data = os.read(key.fd, 65536)
                    if data:
                        output[key.fd] += data
                    else:
                        selector.unregister(key.fd)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            code = child.wait(left)
        except TimeoutError:
            child.kill()
            child.wait()
            raise subprocess.TimeoutExpired(args, timeout or 0.0) from None
    out = bytes(output[pipes[0][0]]) if pipes else None
    err = bytes(output[pipes[1][0]]) if pipes else None
    if check and code != 0:
        raise subprocess.CalledProcessError(code, args, out, err)
    return subprocess.CompletedProcess(args, code, out, err)


# Methods of NamespaceManager written in Python (the stub declares them with the class).
setattr(NamespaceManager, "namespace", _namespace)
setattr(NamespaceManager, "topology", _topology)
setattr(NamespaceManager, "run", _run)
del _namespace, _topology, _run

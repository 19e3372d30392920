#!/usr/bin/env python3
"""IPv6 probes for netcell's policy tests (stdlib only), run inside a namespace.

    probe6.py tcp TIMEOUT_MS [ADDR]:PORT...     one line "[ADDR]:PORT STATE" per target, connects
                                                in parallel: open | closed (reset) | unreachable
                                                (an ICMPv6 error: administratively prohibited and
                                                the like) | silent (nothing within TIMEOUT_MS) |
                                                error:WHY
    probe6.py udp TAG [ADDR]:PORT...            one datagram "netcell-probe6 TAG" to each target;
                                                prints "sent N"
    probe6.py dns TIMEOUT_MS [ADDR]:PORT...     one UDP DNS query (A of probe.test) to each
                                                target: "[ADDR]:PORT answered|unreachable|silent"

A target's ADDR may carry a zone ("fe80::1%eth0"). Every probe is bounded by TIMEOUT_MS (at most
5 s); the process never runs longer than that plus a second.
"""
import errno
import socket
import struct
import sys
import threading
import time


def parse(target):
    if not target.startswith("[") or "]:" not in target:
        raise SystemExit("bad target %r, expected [ADDR]:PORT" % target)
    address, port = target[1:].rsplit("]:", 1)
    info = socket.getaddrinfo(address, int(port), socket.AF_INET6, socket.SOCK_STREAM)
    return info[0][4]


def tcp(target, timeout, out):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(parse(target))
        out[target] = "open"
    except ConnectionRefusedError:
        out[target] = "closed"
    except socket.timeout:
        out[target] = "silent"
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM,
                       errno.EADDRNOTAVAIL):
            out[target] = "unreachable"
        else:
            out[target] = "error:" + (e.strerror or str(e.errno)).replace(" ", "_")
    finally:
        s.close()


def dns(target, timeout, out):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    query = struct.pack("!HHHHHH", 0x6e63, 0x0100, 1, 0, 0, 0)
    query += b"\x05probe\x04test\x00" + struct.pack("!HH", 1, 1)
    try:
        s.connect(parse(target))
        s.send(query)
        s.recv(512)
        out[target] = "answered"
    except socket.timeout:
        out[target] = "silent"
    except OSError:
        out[target] = "unreachable"
    finally:
        s.close()


def main(argv):
    if len(argv) < 3 or argv[0] not in ("tcp", "udp", "dns"):
        raise SystemExit(__doc__)
    if argv[0] == "udp":
        tag, sent = argv[1], 0
        for target in argv[2:]:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            try:
                s.sendto(("netcell-probe6 %s" % tag).encode(), parse(target))
                sent += 1
            except OSError:
                pass
            s.close()
        print("sent %d" % sent)
        return 0
    timeout = min(int(argv[1]), 5000) / 1000.0
    out = {}
    threads = [threading.Thread(target=tcp if argv[0] == "tcp" else dns, args=(t, timeout, out),
                                daemon=True) for t in argv[2:]]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 1
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    for target in argv[2:]:
        print("%s %s" % (target, out.get(target, "silent")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

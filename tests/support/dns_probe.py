#!/usr/bin/env python3
"""DNS queries for netcell's resolver tests that dig cannot make (stdlib only). Bounded in count
and time; run inside a namespace.

    dns_probe.py query SERVER[:PORT] NAME [--bind ADDR] [--raw-source ADDR] [--timeout-ms N]
        One A query over UDP; prints "rcode NAME tc 0|1 answers A1 A2..." or "none".
        --raw-source sends it as a hand-made IPv4/UDP packet with that source address (a raw
        socket); the reply, if any, is awaited on a UDP socket bound to the same source port.
    dns_probe.py flood SERVER[:PORT] COUNT SECONDS TEMPLATE [--type A|AAAA]
        COUNT A (or AAAA) queries for TEMPLATE with {i} replaced by 0..COUNT-1, sent as fast as the socket
        takes them for at most SECONDS, then replies read for another 0.5 s; prints
        "sent N answered M noerror K refused R servfail S ms T".
"""
import argparse
import random
import socket
import struct
import sys
import time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


QTYPES = {"A": 1, "AAAA": 28}


def query(qid, name, qtype=1):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l)
    return (struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" +
            struct.pack("!HH", qtype, 1))


def skip_name(data, at):
    while at < len(data):
        n = data[at]
        if n & 0xC0 == 0xC0:
            return at + 2
        if n == 0:
            return at + 1
        at += 1 + n
    raise ValueError("name runs past the message")


def read_reply(data):
    """(rcode, tc, [A addresses])"""
    _, flags, qd, an, _, _ = struct.unpack("!6H", data[:12])
    at = 12
    for _ in range(qd):
        at = skip_name(data, at) + 4
    addresses = []
    for _ in range(an):
        at = skip_name(data, at)
        rtype, _, _, rdlen = struct.unpack("!HHIH", data[at:at + 10])
        at += 10
        if rtype == 1 and rdlen == 4:
            addresses.append(socket.inet_ntoa(data[at:at + 4]))
        at += rdlen
    return flags & 0x0F, bool(flags & 0x0200), addresses


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def raw_packet(source, sport, dest, dport, payload):
    src, dst = socket.inet_aton(source), socket.inet_aton(dest)
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, socket.IPPROTO_UDP, 0, src,
                     dst)
    return ip + udp


def address(text):
    host, _, port = text.partition(":")
    return host, int(port or 53)


def do_query(args):
    server = address(args.server)
    qid = random.randrange(1 << 16)
    message = query(qid, args.name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.raw_source:
        sock.bind(("0.0.0.0", 0))
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        raw.sendto(raw_packet(args.raw_source, sock.getsockname()[1], server[0], server[1],
                              message), (server[0], 0))
    else:
        sock.bind((args.bind or "0.0.0.0", 0))
        sock.sendto(message, server)
    deadline = time.monotonic() + args.timeout_ms / 1000.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("none")
            return 0
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except (socket.timeout, ConnectionRefusedError):
            continue
        if len(data) < 12 or struct.unpack("!H", data[:2])[0] != qid:
            continue
        rcode, tc, addresses = read_reply(data)
        print("%s tc %d answers %s" % (RCODES.get(rcode, str(rcode)), tc, " ".join(addresses)))
        return 0


def do_flood(args):
    server = address(args.server)
    count = min(args.count, 100000)
    seconds = min(args.seconds, 30.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(server)
    sock.setblocking(False)
    counts = {"answered": 0, "noerror": 0, "refused": 0, "servfail": 0}

    def take():
        while True:
            try:
                data = sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if len(data) < 12:
                continue
            rcode = data[3] & 0x0F
            counts["answered"] += 1
            key = {0: "noerror", 5: "refused", 2: "servfail"}.get(rcode)
            if key:
                counts[key] += 1

    start = time.monotonic()
    sent = 0
    while sent < count and time.monotonic() - start < seconds:
        try:
            sock.send(query(sent & 0xFFFF, args.template.replace("{i}", str(sent)),
                            QTYPES[args.type]))
            sent += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass
        if sent % 64 == 0:
            take()
    flooded = time.monotonic() - start
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        take()
        time.sleep(0.01)
    print("sent %d answered %d noerror %d refused %d servfail %d ms %d" %
          (sent, counts["answered"], counts["noerror"], counts["refused"], counts["servfail"],
           int(flooded * 1000)))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query")
    q.add_argument("server")
    q.add_argument("name")
    q.add_argument("--bind")
    q.add_argument("--raw-source")
    q.add_argument("--timeout-ms", type=int, default=1000)
    f = sub.add_parser("flood")
    f.add_argument("server")
    f.add_argument("count", type=int)
    f.add_argument("seconds", type=float)
    f.add_argument("template")
    f.add_argument("--type", choices=sorted(QTYPES), default="A")
    args = parser.parse_args()
    return do_query(args) if args.command == "query" else do_flood(args)


if __name__ == "__main__":
    sys.exit(main())

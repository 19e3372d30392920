#!/usr/bin/env python3
"""A small authoritative DNS server for netcell's resolver tests (stdlib only).

    dns_stub.py --config FILE --listen ADDR [--port 53] --log FILE [--lifetime SECONDS]
                [--daemon --pid-file FILE]

FILE is JSON: {NAME: {"a": [ADDR...], "aaaa": [ADDR6...], "cname": TARGET, "ttl": N, "delay_ms": N, "chase": true,
"extra": {OWNER: ADDR...}, "rotate": N}, ...}. A NAME "*.SUFFIX" answers every name below SUFFIX
(one label or more) that has no entry of its own. For a question of type A the answer holds the
name's CNAME and, while "chase" is true (the default), the records of its target as well (an
authority for both: the chain within one answer), then the A records of the last name (for type AAAA: its AAAA records, "aaaa"); "extra"
adds records of other names to the answer (what a poisoning upstream would send; an address with
':' is an AAAA record); "rotate" turns
the A records N places further at each answer (round-robin). Unknown names get NXDOMAIN; other
types get the CNAME chain only.

UDP answers are cut to 512 bytes, or to the size the query's EDNS record gives, by leaving answer
records out and setting TC; TCP answers are whole. "delay_ms" holds back the answers to that name
(UDP and TCP). Every query is logged as one line "TRANSPORT TYPE NAME SOURCE" when it arrives,
before any delay. The process exits after --lifetime seconds (default 120) whatever happens.
With --daemon it binds both sockets, then forks: the parent writes the child's pid to --pid-file
and exits 0 (non-zero if binding failed), the child serves.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

TYPE_A, TYPE_CNAME, TYPE_AAAA, TYPE_OPT = 1, 5, 28, 41
TYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
              33: "SRV", 41: "OPT", 65: "HTTPS", 255: "ANY"}
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3
MAX_CHAIN = 8


def read_name(data, at):
    """The name at `at` (lower case, no trailing dot) and the offset after it; follows
    compression pointers (bounded)."""
    labels, end, jumps = [], None, 0
    while True:
        if at >= len(data):
            raise ValueError("name runs past the message")
        n = data[at]
        if n & 0xC0 == 0xC0:
            if at + 1 >= len(data) or jumps > 16:
                raise ValueError("bad pointer")
            if end is None:
                end = at + 2
            at = ((n & 0x3F) << 8) | data[at + 1]
            jumps += 1
            continue
        if n & 0xC0:
            raise ValueError("bad label")
        if n == 0:
            return ".".join(labels).lower(), (end if end is not None else at + 1)
        labels.append(data[at + 1:at + 1 + n].decode("ascii", "replace"))
        at += 1 + n


def encode_name(name):
    out = b""
    for label in [l for l in name.split(".") if l]:
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def record(owner, rtype, ttl, rdata):
    return encode_name(owner) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


class Zone:
    def __init__(self, config):
        self.names = {k.lower().rstrip("."): v for k, v in config.items()}
        self.turns = {}
        self.lock = threading.Lock()

    def find(self, name):
        if name in self.names:
            return self.names[name]
        labels = name.split(".")
        for i in range(1, len(labels)):
            entry = self.names.get("*." + ".".join(labels[i:]))
            if entry is not None:
                return entry
        return None

    def answer(self, qname, qtype):
        """(rcode, [answer records], delay_ms)"""
        entry = self.find(qname)
        if entry is None:
            return NXDOMAIN, [], 0
        delay = int(entry.get("delay_ms", 0))
        records, name, seen = [], qname, set()
        while entry is not None and len(seen) < MAX_CHAIN:
            seen.add(name)
            ttl = int(entry.get("ttl", 60))
            target = entry.get("cname")
            if target:
                target = target.lower().rstrip(".")
                records.append(record(name, TYPE_CNAME, ttl, encode_name(target)))
                if not entry.get("chase", True) or target in seen:
                    break
                name, entry = target, self.find(target)
                continue
            if qtype in (TYPE_A, 255):
                addresses = list(entry.get("a", []))
                if entry.get("rotate") and addresses:
                    with self.lock:
                        turn = self.turns.get(name, 0)
                        self.turns[name] = turn + int(entry["rotate"])
                    turn %= len(addresses)
                    addresses = addresses[turn:] + addresses[:turn]
                for a in addresses:
                    records.append(record(name, TYPE_A, ttl, socket.inet_aton(a)))
            if qtype in (TYPE_AAAA, 255):
                for a in entry.get("aaaa", []):
                    records.append(record(name, TYPE_AAAA, ttl,
                                          socket.inet_pton(socket.AF_INET6, a)))
            break
        extra = self.find(qname).get("extra", [])
        for owner, a in (extra.items() if isinstance(extra, dict) else extra):
            if ":" in a:
                records.append(record(owner, TYPE_AAAA, 60, socket.inet_pton(socket.AF_INET6, a)))
            else:
                records.append(record(owner, TYPE_A, 60, socket.inet_aton(a)))
        return NOERROR, records, delay


def parse_query(data):
    """(id, flags, qname, qtype, question bytes, edns size or None)"""
    if len(data) < 12:
        raise ValueError("short")
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", data[:12])
    if qd != 1 or flags & 0x8000:
        raise ValueError("not a one-question query")
    qname, at = read_name(data, 12)
    if at + 4 > len(data):
        raise ValueError("short question")
    qtype, _ = struct.unpack("!HH", data[at:at + 4])
    question = data[12:at + 4]
    at += 4
    edns = None
    for i in range(an + ns + ar):
        _, at = read_name(data, at)
        if at + 10 > len(data):
            raise ValueError("short record")
        rtype, rclass, _, rdlen = struct.unpack("!HHIH", data[at:at + 10])
        at += 10 + rdlen
        if rtype == TYPE_OPT and i >= an + ns:
            edns = rclass
    return qid, flags, qname, qtype, question, edns


def build(qid, flags, question, rcode, answers, edns, limit):
    """The reply; with `limit`, answer records left out (TC set) until it fits."""
    opt = struct.pack("!BHHIH", 0, TYPE_OPT, 1232, 0, 0) if edns is not None else b""
    count, tc = len(answers), 0
    while True:
        header = struct.pack("!6H", qid, 0x8400 | (flags & 0x7900) | 0x80 | tc | rcode, 1, count, 0,
                             1 if opt else 0)
        message = header + question + b"".join(answers[:count]) + opt
        if limit is None or len(message) <= limit or count == 0:
            return message
        count, tc = count - 1, 0x0200


class Stub:
    def __init__(self, zone, log_path):
        self.zone = zone
        self.log = open(log_path, "a", buffering=1)
        self.lock = threading.Lock()

    def note(self, transport, qtype, qname, source):
        with self.lock:
            self.log.write("%s %s %s %s\n" % (transport, TYPE_NAMES.get(qtype, str(qtype)),
                                              qname or ".", source))

    def respond(self, data, transport, source):
        """(reply bytes or None, delay seconds)"""
        try:
            qid, flags, qname, qtype, question, edns = parse_query(data)
        except (ValueError, struct.error):
            if len(data) >= 12:
                qid, flags = struct.unpack("!HH", data[:4])
                return struct.pack("!6H", qid, 0x8000 | (flags & 0x7900) | FORMERR, 0, 0, 0,
                                   0), 0
            return None, 0
        self.note(transport, qtype, qname, source)
        try:
            rcode, answers, delay = self.zone.answer(qname, qtype)
        except (ValueError, TypeError, OSError, struct.error) as e:
            self.note(transport, qtype, "config-error:%s" % e, source)
            return struct.pack("!6H", qid, 0x8000 | (flags & 0x7900) | 2, 0, 0, 0, 0), 0
        limit = None
        if transport == "udp":
            limit = max(512, edns) if edns is not None else 512
        return build(qid, flags, question, rcode, answers, edns, limit), delay / 1000.0

    def serve_udp(self, sock):
        while True:
            data, peer = sock.recvfrom(65535)
            reply, delay = self.respond(data, "udp", peer[0])
            if reply is None:
                continue
            if delay > 0:
                threading.Timer(delay, self.send_quietly, (sock, reply, peer)).start()
            else:
                self.send_quietly(sock, reply, peer)

    @staticmethod
    def send_quietly(sock, reply, peer):
        try:
            sock.sendto(reply, peer)
        except OSError:
            pass

    def serve_tcp_client(self, conn, peer):
        conn.settimeout(10)
        with conn:
            buffered = b""
            while True:
                try:
                    chunk = conn.recv(65535)
                except OSError:
                    return
                if not chunk:
                    return
                buffered += chunk
                while len(buffered) >= 2:
                    want = struct.unpack("!H", buffered[:2])[0]
                    if len(buffered) < 2 + want:
                        break
                    data, buffered = buffered[2:2 + want], buffered[2 + want:]
                    reply, delay = self.respond(data, "tcp", peer[0])
                    if reply is None:
                        continue
                    time.sleep(delay)
                    try:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                    except OSError:
                        return

    def serve_tcp(self, sock):
        while True:
            conn, peer = sock.accept()
            threading.Thread(target=self.serve_tcp_client, args=(conn, peer), daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--log", required=True)
    parser.add_argument("--lifetime", type=float, default=120)
    parser.add_argument("--daemon", action="store_true")
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    with open(args.config) as f:
        zone = Zone(json.load(f))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp.bind((args.listen, args.port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.listen, args.port))
    tcp.listen(64)
    if args.daemon:
        child = os.fork()
        if child > 0:
            if args.pid_file:
                with open(args.pid_file + ".tmp", "w") as f:
                    f.write("%d\n" % child)
                os.rename(args.pid_file + ".tmp", args.pid_file)
            os._exit(0)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    stub = Stub(zone, args.log)
    threading.Thread(target=stub.serve_udp, args=(udp,), daemon=True).start()
    threading.Thread(target=stub.serve_tcp, args=(tcp,), daemon=True).start()
    time.sleep(args.lifetime)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Two netcell-bench-policy runs in lockstep, each in its own world, with a comparison.

    bench/lib/lockstep.py [--world tests/support/world.sh] [--step-timeout S]
                          [--label-a A] [--label-b B] [--csv-a FILE] [--csv-b FILE]
                          -- COMMAND_A ... -- COMMAND_B ...

Each COMMAND is a netcell-bench-policy (or -steps) command line with its own --csv (or a
bench/lib/world_tool.sh one for pol0, pol, polsteps0, polsteps, v4 or dual, whose csv --csv-a / --csv-b
name); the driver appends --pace=RFD,WFD and runs it under the world script. Creates and destroys then go in turn: one
of A, one of B, one of B, one of A, ... (the order flips every round, so neither always goes
first), so both runs meet the same machine however its speed drifts (this VM's changed two-fold
between runs minutes apart), while each world keeps its own N namespaces alive, every one of them
as its run made it. When both have ended it prints the p50 create of each per block of 100 and
B / A, and exits with the worse of the two runs' exit statuses (1 when a step timed out).
"""
import argparse
import csv
import os
import select
import statistics
import subprocess
import sys


def csv_of(command):
    for arg in command:
        if arg.startswith("--csv="):
            return arg[len("--csv="):]
    return None


class Run:
    def __init__(self, label, world, command):
        self.label = label
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        self.proc = subprocess.Popen(
            [world] + command + ["--pace=%d,%d" % (to_child_r, from_child_w)],
            pass_fds=(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self.alive = True

    def step(self, timeout):
        """One create or destroy; False when the run has ended (or timed out)."""
        try:
            os.write(self.to_child, b".")
        except BrokenPipeError:
            return self.end()
        ready, _, _ = select.select([self.from_child], [], [], timeout)
        if not ready:
            print("lockstep: %s took more than %g s for one step" % (self.label, timeout),
                  file=sys.stderr)
            self.timed_out = True
            self.proc.kill()
            return self.end()
        if not os.read(self.from_child, 1):
            return self.end()
        return True

    def end(self):
        if self.alive:
            os.close(self.to_child)
            os.close(self.from_child)
            self.alive = False
        return False

    timed_out = False


def creates(path):
    with open(path) as f:
        return [float(r["setup_ms"]) for r in csv.DictReader(f)]


def compare(label_a, a, label_b, b):
    print("block      p50 %-10s p50 %-10s %s / %s" % (label_a, label_b, label_b, label_a))
    n = min(len(a), len(b))
    for start in range(0, n, 100):
        pa = statistics.median(a[start:start + 100])
        pb = statistics.median(b[start:start + 100])
        print("%4d-%-5d %8.3f ms  %8.3f ms   %.3f" % (start + 1, min(start + 100, n), pa, pb,
                                                     pb / pa))
    if n:
        pa, pb = statistics.median(a[:n]), statistics.median(b[:n])
        print("all        %8.3f ms  %8.3f ms   %.3f" % (pa, pb, pb / pa))


def main():
    argv = sys.argv[1:]
    if argv.count("--") != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    first = argv.index("--")
    second = argv.index("--", first + 1)
    parser = argparse.ArgumentParser(prog="lockstep.py")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--world",
                        default=os.path.join(here, "..", "..", "tests", "support", "world.sh"))
    parser.add_argument("--step-timeout", type=float, default=120.0)
    parser.add_argument("--label-a", default="A")
    parser.add_argument("--label-b", default="B")
    parser.add_argument("--csv-a")
    parser.add_argument("--csv-b")
    options = parser.parse_args(argv[:first])
    command_a, command_b = argv[first + 1:second], argv[second + 1:]
    csv_a = options.csv_a or csv_of(command_a)
    csv_b = options.csv_b or csv_of(command_b)
    if not command_a or not command_b or not csv_a or not csv_b:
        print("lockstep.py: each command needs its own --csv=FILE (or --csv-a / --csv-b)",
              file=sys.stderr)
        return 2
    if csv_a == csv_b:
        print("lockstep.py: the two commands write the same csv", file=sys.stderr)
        return 2
    runs = [Run(options.label_a, options.world, command_a),
            Run(options.label_b, options.world, command_b)]
    order = list(runs)
    while any(r.alive for r in runs):
        for run in order:
            if run.alive:
                run.step(options.step_timeout)
        order.reverse()
    statuses = [r.proc.wait() for r in runs]
    if any(r.timed_out for r in runs):
        return 1
    if all(os.path.exists(path) for path in (csv_a, csv_b)):
        compare(options.label_a, creates(csv_a), options.label_b, creates(csv_b))
    return max(statuses)


if __name__ == "__main__":
    sys.exit(main())

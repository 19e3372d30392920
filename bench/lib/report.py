#!/usr/bin/env python3
"""Turns one bench/run results directory into tables, ratios, target checks and plots.

  report.py OUT [--mode quick|full] [--publish DOCS_DIR]

Reads OUT/{tool}-n{N}.csv|.json|.verify, OUT/dataplane-*.json and OUT/machine.txt; writes
OUT/summary.json, OUT/report.md and OUT/setup-vs-n*.png (gnuplot). The egress-policy and resolver
tools (issue 14) are read by policy_report.py. With --publish, copies the plots to
DOCS_DIR/benchmarks-setup*.png and replaces the generated parts of DOCS_DIR/BENCHMARKS.md: the main
tables between the bench:begin / bench:end markers, the data plane's (iperf3) between
bench-dataplane:begin / bench-dataplane:end, the policy tables between bench-policy:begin /
bench-policy:end, each only when this run measured it. Exits 1 if any tool's namespace failed its
check or a run is missing or incomplete.
"""
import argparse
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import policy_report
from benchstats import fmt, median, pct, target_row

TOOLS = [  # id, label; the order of every table
    ("lib", "netcell, library (Google Benchmark)"),
    ("cli", "netcell, CLI (one process per operation)"),
    ("clirt", "netcell, CLI started by the runtime driver (as netavark and CNI are)"),
    ("floor", "kernel floor (C++, raw netlink, no NAT/port)"),
    ("ipt", "classic: ip + iptables, one process per step"),
    ("batch", "ip -batch + nft -f"),
    ("netavark", "netavark 1.4 setup/teardown"),
    ("cni", "CNI bridge + host-local + portmap"),
    ("ncni", "netcell's CNI plugin (driven like the CNI chain)"),
]
LABEL = dict(TOOLS)
SHORT = {"lib": "netcell lib", "cli": "netcell CLI", "clirt": "netcell CLI (runtime driver)",
         "floor": "kernel floor", "ipt": "ip+iptables",
         "batch": "ip -batch+nft -f", "netavark": "netavark", "cni": "CNI chain",
         "ncni": "netcell CNI"}
REFERENCE_P50 = {"ipt": 23.4, "batch": 19.0, "netavark": 67.3, "cni": 111.7, "floor": 1.4}


def load_runs(out):
    runs = {}
    for path in glob.glob(os.path.join(out, "*-n*.json")):
        m = re.match(r"(\w+)-n(\d+)\.json$", os.path.basename(path))
        if not m or m.group(1) not in LABEL:
            continue
        tool, n = m.group(1), int(m.group(2))
        with open(path) as f:
            meta = json.load(f)
        rows = []
        csv_path = path[:-5] + ".csv"
        if os.path.exists(csv_path):
            with open(csv_path) as f:
                rows = list(csv.DictReader(f))
        verify = {}
        verify_path = path[:-5] + ".verify"
        if os.path.exists(verify_path):
            with open(verify_path) as f:
                for line in f:
                    parts = line.split(" ", 2)
                    if len(parts) >= 2:
                        verify[parts[0]] = parts[1]
        runs[(tool, n)] = analyse(tool, n, meta, rows, verify)
    return runs


def floor_pairs(out):
    """The N = 100 floor/library pairs: the first runs and the repeats (TOOL-n100-rK), as
    (name, library p50, floor p50, library check status) for every pair with both halves."""
    pairs = []
    for suffix in [""] + sorted({re.match(r"lib-n100(-r\d+)\.csv$", os.path.basename(p)).group(1)
                                 for p in glob.glob(os.path.join(out, "lib-n100-r*.csv"))}):
        p50s = []
        for tool in ("lib", "floor"):
            path = os.path.join(out, f"{tool}-n100{suffix}.csv")
            if not os.path.exists(path):
                break
            with open(path) as f:
                setup = [float(r["setup_ms"]) for r in csv.DictReader(f)]
            if not setup:
                break
            p50s.append(median(setup))
        if len(p50s) == 2:
            status = -1
            meta = os.path.join(out, f"lib-n100{suffix}.json")
            if os.path.exists(meta):
                with open(meta) as f:
                    status = json.load(f).get("verify_status", -1)
            pairs.append((suffix.lstrip("-") or "r1", p50s[0], p50s[1], status))
    return pairs


def analyse(tool, n, meta, rows, verify):
    setup = [float(r["setup_ms"]) for r in rows]
    teardown = [float(r["teardown_ms"]) for r in rows if float(r["teardown_ms"]) >= 0]
    created = len(setup)
    destroyed = len(teardown)
    r = {
        "tool": tool, "n": n, "created": created, "destroyed": destroyed,
        "setup_p50": median(setup), "setup_p95": pct(setup, 0.95),
        "teardown_p50": median(teardown), "teardown_p95": pct(teardown, 0.95),
        "setup_sum_s": sum(setup) / 1000,
        "setup_cpu_ms": meta.get("setup_cpu_s", 0) * 1000 / created if created else None,
        "teardown_cpu_ms": (meta.get("teardown_cpu_s", 0) * 1000 / destroyed
                            if destroyed else None),
        "verify_status": meta.get("verify_status"), "verify": verify, "meta": meta,
        "setup": setup,
    }
    if created >= 200:
        r["first100_p50"] = median(setup[:100])
        r["first100_p95"] = pct(setup[:100], 0.95)
        r["last100_p50"] = median(setup[-100:])
        r["last100_p95"] = pct(setup[-100:], 0.95)
        r["last100_range"] = f"{created - 99}–{created}"
        r["growth"] = r["last100_p50"] / r["first100_p50"]
        if created >= 5000:
            mid = created // 2
            r["mid100_p50"] = median(setup[mid - 100:mid])
            r["mid100_range"] = f"{mid - 99}–{mid}"
    if destroyed >= 100:
        r["teardown_first100_p50"] = median(teardown[:100])
    if destroyed >= 200:
        r["teardown_last100_p50"] = median(teardown[-100:])
    if rows and "add_ms" in rows[0]:
        # The main plugins' own share (peers.py: cni, ncni).
        add = [float(x["add_ms"]) for x in rows if float(x["add_ms"]) >= 0]
        dele = [float(x["del_ms"]) for x in rows if float(x["del_ms"]) >= 0]
        r.update({"add_p50": median(add), "add_p95": pct(add, 0.95), "del_p50": median(dele),
                  "del_p95": pct(dele, 0.95)})
        if len(add) >= 200:
            r["add_growth"] = median(add[-100:]) / median(add[:100])
            r["add_last100_range"] = f"{len(add) - 99}–{len(add)}"
        if len(dele) >= 200:
            r["del_growth"] = median(dele[-100:]) / median(dele[:100])
    if rows and "netns_ms" in rows[0]:
        steps = {}
        for key in ("netns_ms", "veth_ms", "host_ms", "inside_ms"):
            vals = [float(x[key]) for x in rows]
            steps[key] = {"all": median(vals), "first100": median(vals[:100]),
                          "last100": median(vals[-100:])}
        r["steps"] = steps
    return r


def with_ratio(v, ref):
    if v is None:
        return "—"
    if ref in (None, 0):
        return fmt(v)
    return f"{fmt(v)} (×{fmt(v / ref)})"


def runs_at(runs, n, fallback_smallest=False):
    """The run of each tool at N = n (or, with fallback, each tool's smallest run)."""
    chosen = {}
    for tool, _ in TOOLS:
        if (tool, n) in runs:
            chosen[tool] = runs[(tool, n)]
        elif fallback_smallest:
            ns = sorted(k[1] for k in runs if k[0] == tool)
            if ns:
                chosen[tool] = runs[(tool, ns[0])]
    return chosen


def table_basic(chosen, title):
    ref = chosen.get("cli")
    lines = [f"### {title}", "",
             "Milliseconds per namespace; in parentheses the ratio to netcell's CLI in the same run.",
             "",
             "| tool | N | setup p50 | setup p95 | teardown p50 | teardown p95 | CPU ms/ns setup |"
             " CPU ms/ns teardown |",
             "|---|---|---|---|---|---|---|---|"]
    for tool, _ in TOOLS:
        r = chosen.get(tool)
        if not r:
            continue
        cells = [with_ratio(r[k], ref[k] if ref else None) for k in
                 ("setup_p50", "setup_p95", "teardown_p50", "teardown_p95", "setup_cpu_ms",
                  "teardown_cpu_ms")]
        reached = f"{r['created']}" + ("" if r["created"] == r["n"] else f" of {r['n']}")
        lines.append(f"| {LABEL[tool]} | {reached} | " + " | ".join(cells) + " |")
    return lines


def table_cni(runs):
    """ADD and DEL of the main plugins alone (cni: bridge + host-local, then portmap; ncni:
    netcell), at N = 100 and, where run, to N = 1,000."""
    lines = ["### CNI plugins: ADD and DEL on their own", "",
             "Milliseconds of the main plugins' ADD and DEL (the runtime driver's `ip netns` and "
             "loopback steps, the same for both, left out); in parentheses netcell's plugin "
             "against the chain in the same run.", "",
             "| plugins | N | ADD p50 | ADD p95 | DEL p50 | DEL p95 | ADD growth to 1,000 | "
             "DEL growth to 1,000 |", "|---|---|---|---|---|---|---|---|"]
    found = False
    for n in sorted({n for t, n in runs if t in ("cni", "ncni")}):
        ref = runs.get(("cni", n))
        for tool in ("cni", "ncni"):
            r = runs.get((tool, n))
            if not r or r.get("add_p50") is None:
                continue
            found = True
            cells = []
            for k in ("add_p50", "add_p95", "del_p50", "del_p95"):
                v = r.get(k)
                if tool == "ncni" and ref and ref.get(k) and v:
                    cells.append(f"{fmt(v)} ({fmt(ref[k] / v)}× faster)")
                else:
                    cells.append(fmt(v) if v is not None else "—")
            grow = [f"{fmt(r[k])}×" if r.get(k) else "—" for k in ("add_growth", "del_growth")]
            lines.append(f"| {LABEL[tool]} | {r['created']} | " + " | ".join(cells + grow) + " |")
    return lines if found else []


def table_podman(out):
    """`podman run --rm … true` on no network, the CNI chain and netcell's plugin
    (podman_run.sh), from the run with the most rounds."""
    found = []
    for path in glob.glob(os.path.join(out, "podman-n*.json")):
        with open(path) as f:
            found.append(json.load(f))
    if not found:
        return []
    r = max(found, key=lambda x: x.get("rounds", 0))
    none = r["none"]["p50_ms"]
    lines = ["### podman: `podman run --rm … true` (podman 4.3, CNI backend)", "",
             f"Milliseconds per container, {r['rounds']} rounds, the three networks in rotating "
             "order; “network” is the p50 minus that of `--network none` (the floor: podman "
             "itself).", "",
             "| network | p50 | p95 | network (p50 − none) | check |", "|---|---|---|---|---|"]
    names = {"none": "`--network none`", "refnet": "bridge + host-local + portmap",
             "ncnet": "netcell (mode private)"}
    for net in ("none", "refnet", "ncnet"):
        v = r[net]
        lines.append(f"| {names[net]} | {fmt(v['p50_ms'])} | {fmt(v['p95_ms'])} | "
                     f"{fmt(v['p50_ms'] - none) if net != 'none' else '—'} | "
                     f"{r.get('check', {}).get(net, '—')} |")
    ref, mine = r["refnet"]["p50_ms"], r["ncnet"]["p50_ms"]
    if mine - none > 0:
        lines += ["", f"The chain's network part costs {fmt((ref - none) / (mine - none))}× "
                      f"netcell's; a whole `podman run` with the chain takes {fmt(ref / mine)}× "
                      "as long as with netcell."]
    return lines


def table_growth(chosen, n):
    ref = chosen.get("cli")
    lines = [f"### Growth: a run to N = {n:,} (all namespaces kept alive)", "",
             "Setup p50 of the first 100 namespaces against the last 100 created; teardown p50 of "
             "the first 100 torn down (all others still alive) against the last 100. In "
             "parentheses the ratio to netcell's CLI in the same run.", "",
             "| tool | created / torn down | setup p50, 1–100 | setup p50, last 100 | "
             "setup p95, last 100 | growth (last ÷ first) | teardown p50, first 100 | "
             "teardown p50, last 100 | sum of setups | wall, setup + teardown |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for tool, _ in TOOLS:
        r = chosen.get(tool)
        if not r or "growth" not in r:
            continue
        g = lambda k: with_ratio(r.get(k), ref.get(k) if ref else None)  # noqa: E731
        wall = r["meta"].get("setup_wall_s", 0) + r["meta"].get("teardown_wall_s", 0)
        lines.append(
            f"| {LABEL[tool]} | {r['created']} / {r['destroyed']} | {g('first100_p50')} | "
            f"{g('last100_p50')} ({r['last100_range']}) | {g('last100_p95')} | "
            f"{fmt(r['growth'])}× | {g('teardown_first100_p50')} | {g('teardown_last100_p50')} | "
            f"{fmt(r['setup_sum_s'])} s | {fmt(wall)} s |")
    return lines


def table_10k(runs, steps=None):
    rows = [r for (t, n), r in sorted(runs.items()) if n >= 5000 and "growth" in r]
    if not rows:
        return []
    series = [(LABEL[r["tool"]], r["setup"]) for r in rows]
    for (kind, n), d in sorted((steps or {}).items()):
        if kind == "lib" and n >= 5000:
            series.append((f"netcell, library: the breakdown run (`libsteps`, N={n})",
                           op_totals(d, "create")))
    blocks = ["", "Setup p50 per block of 1,000 namespaces (ms):", "",
              "| run | " + " | ".join(f"{k + 1}–{k + 1000}" for k in range(0, 10000, 1000))
              + " |", "|---|" + "---|" * 10]
    for label, values in series:
        blocks.append(f"| {label} | " + " | ".join(
            fmt(median(values[k:k + 1000])) if len(values) > k else "—"
            for k in range(0, 10000, 1000)) + " |")
    lines = ["### netcell alone to N = 10,000", "",
             "| interface | created | setup p50, 1–100 | setup p50, middle 100 | "
             "setup p50, last 100 | setup p95, last 100 | growth (last ÷ first) | teardown p50 | "
             "sum of setups |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {LABEL[r['tool']]} | {r['created']} | {fmt(r['first100_p50'])} | "
            f"{fmt(r.get('mid100_p50'))} ({r.get('mid100_range', '')}) | "
            f"{fmt(r['last100_p50'])} ({r['last100_range']}) | {fmt(r['last100_p95'])} | "
            f"{fmt(r['growth'])}× | {fmt(r['teardown_p50'])} | {fmt(r['setup_sum_s'])} s |")
    return lines + blocks


def table_memory(runs):
    lines = ["### Memory of netcell's own processes", "",
             "| what | N alive | figure |", "|---|---|---|"]
    for (tool, n), r in sorted(runs.items()):
        m = r["meta"]
        if tool == "lib" and "rss_kib_after" in m:
            per = (m["rss_kib_after"] - m["rss_kib_before"]) / max(r["created"], 1)
            lines.append(f"| library process: RSS before → after creating N | {n} | "
                         f"{m['rss_kib_before']} → {m['rss_kib_after']} KiB "
                         f"({fmt(per, 2)} KiB per namespace); peak {m['maxrss_kib']} KiB |")
        if tool == "cli" and m.get("cli_maxrss_create_kib"):
            lines.append(f"| CLI: peak RSS of one `netcell create` / `netcell destroy` | {n} | "
                         f"{m['cli_maxrss_create_kib']} / {m['cli_maxrss_destroy_kib']} KiB |")
            lines.append(f"| CLI: netcell processes left running after N creates | {n} | "
                         f"{m.get('resident_processes')} |")
        if tool == "floor" and "maxrss_kib" in m:
            lines.append(f"| (kernel floor process, for scale: peak RSS) | {n} | "
                         f"{m['maxrss_kib']} KiB |")
    return lines


PATHS = [
    ("loopback", "loopback inside the namespace (ceiling)"),
    ("veth_world_to_ns", "world → namespace over the veth"),
    ("nat_ns_to_internet", "namespace → internet (wan) through NAT"),
    ("published_wan_to_ns", "wan → world:20001 → namespace:80 (published port)"),
    ("published_world_to_ns", "client in the world → world:20001 → namespace:80"),
    ("plain_veth_world_to_wan", "reference: world → wan over a plain veth"),
]


# netcell only: the host's loopback publishes side by side, then IPv6 against its own veth path.
PATHS_LOOPBACK = [
    ("published_lo4_to_ns", "client in the world → 127.0.0.1:20001 → namespace:80 (DNAT)"),
    ("published_lo6_to_ns", "client in the world → [::1]:20001 → namespace:80 (service relay)"),
]
PATHS6 = [
    ("veth6_world_to_ns", "world → namespace over the veth (IPv6)"),
    ("nat6_ns_to_internet", "namespace → internet (wan) through NAT66"),
    ("published6_wan_to_ns", "wan → [2001:db8:1::1]:20001 → namespace:80 (published port)"),
    ("plain_veth6_world_to_wan", "reference: world → wan over a plain veth (IPv6)"),
]


def rounds_text(run):
    """How a data-plane run measured: dataplane.sh's rounds (one 5 s run per path before them)."""
    n = max((len(v) for v in run.get("rounds", {}).values()), default=1)
    return "5 s per path" if n == 1 else f"5 s a run, the median of {n} rounds per path"


def table_dataplane6(dp):
    nc = (dp or {}).get("netcell", {})
    if not any(k in nc for k, _ in PATHS_LOOPBACK + PATHS6):
        return []
    lo4, veth6 = nc.get("published_lo4_to_ns"), nc.get("veth6_world_to_ns")
    lines = ["### netcell over the host's loopback and over IPv6 (iperf3, 1 stream, "
             f"{rounds_text(nc)})",
             "", "Gbit/s; \"% of 127.0.0.1\" is the path against the 127.0.0.1 publish of the same "
             "run, \"% of IPv6 veth\" against world → namespace over the veth over IPv6.", "",
             "| path | netcell | % of 127.0.0.1 | % of IPv6 veth |", "|---|---|---|---|"]
    for key, label in PATHS_LOOPBACK + PATHS6:
        a = nc.get(key)
        p4 = f"{100 * a / lo4:.0f} %" if a and lo4 and key in dict(PATHS_LOOPBACK) else "—"
        p6 = f"{100 * a / veth6:.0f} %" if a and veth6 and key in dict(PATHS6) else "—"
        lines.append(f"| {label} | {fmt(a) if a is not None else 'failed'} | {p4} | {p6} |")
    return lines


def load_dataplane(out):
    d = {}
    for tool in ("netcell", "classic"):
        p = os.path.join(out, f"dataplane-{tool}.json")
        if os.path.exists(p):
            with open(p) as f:
                d[tool] = json.load(f)
    return d


def table_dataplane(dp):
    if not dp:
        return []
    nc, cl = dp.get("netcell", {}), dp.get("classic", {})
    veth_nc, veth_cl = nc.get("veth_world_to_ns"), cl.get("veth_world_to_ns")
    lines = [f"### TCP throughput (iperf3, 1 stream, {rounds_text(nc)})", "",
             "Gbit/s; classic in parentheses as a ratio to netcell; \"% of veth\" is the path "
             "against world → namespace over the veth of the same tool.", "",
             "| path | netcell | netcell, % of veth | classic (ip + iptables) | classic, % of veth |",
             "|---|---|---|---|---|"]
    for key, label in PATHS:
        a, b = nc.get(key), cl.get(key)
        pa = f"{100 * a / veth_nc:.0f} %" if a and veth_nc else "—"
        pb = f"{100 * b / veth_cl:.0f} %" if b and veth_cl else "—"
        bb = with_ratio(b, a) if b is not None else "failed"
        lines.append(f"| {label} | {fmt(a) if a is not None else 'failed'} | {pa} | {bb} | {pb} |")
    return lines


def table_verify(runs):
    checks = ["egress_nat", "published_port_from_wan", "published_port_from_world",
              "veth_world_to_ns"]
    lines = ["### Does the namespace really work? (one namespace per tool and run, real TCP)", "",
             "| tool | N | NAT egress to wan (server sees 203.0.113.1) | published port from wan | "
             "published port from the world itself | world → namespace over the veth |",
             "|---|---|---|---|---|---|"]
    for (tool, n), r in sorted(runs.items(), key=lambda kv: ([t for t, _ in TOOLS].index(
            kv[0][0]), kv[0][1])):
        cells = []
        for c in checks:
            v = r["verify"].get(c)
            if v is None:
                v = "n/a (floor: no NAT)" if tool == "floor" else "—"
            elif v == "info-FAIL":
                v = "no (not required)"
            cells.append(v)
        lines.append(f"| {SHORT[tool]} | {n} | " + " | ".join(cells) + " |")
    return lines


def table_speed(out):
    """The speed probe bench/run takes just before each run (speed.csv), if there is one."""
    path = os.path.join(out, "speed.csv")
    if not os.path.exists(path):
        return []
    rows = list(csv.DictReader(open(path)))
    if not rows:
        return []
    loops = [int(r["probe_ms"]) for r in rows]
    lines = ["### The machine's speed before each run", "",
             "Milliseconds that 200 million dependent additions took just before the run "
             "(`bench/speed_probe.cc`; lower is faster, no system calls, no memory): how fast "
             f"this VM's vCPUs were at that moment. Range in this run: {min(loops)}–{max(loops)} "
             "ms.", "",
             "| run | probe ms | run | probe ms | run | probe ms |", "|---|---|---|---|---|---|"]
    cells = [(f"{r['tool']} N={int(r['n']):,}" + (f" ({r['repeat']})" if r["repeat"] else ""),
              r["probe_ms"]) for r in rows]
    for i in range(0, len(cells), 3):
        chunk = cells[i:i + 3] + [("", "")] * (3 - len(cells[i:i + 3]))
        lines.append("| " + " | ".join(f"{a} | {b}" for a, b in chunk) + " |")
    return lines


def table_floor_steps(runs):
    rows = [(n, r) for (t, n), r in sorted(runs.items()) if t == "floor" and "steps" in r]
    if not rows:
        return []
    names = {"netns_ms": "netns (unshare + bind mount + netlink socket)",
             "veth_ms": "veth with its peer sent to the world", "host_ms": "host end: addr + up",
             "inside_ms": "inside: lo up, addr, up, route; ip_forward"}
    lines = ["### Kernel floor, per step (p50 ms)", "",
             "| step | " + " | ".join(
                 f"N={n}: all" + (f" | N={n}: 1–100 | N={n}: last 100" if n >= 200 else "")
                 for n, _ in rows) + " |",
             "|---|" + "".join("---|" + ("---|---|" if n >= 200 else "") for n, _ in rows)]
    for key, label in names.items():
        cells = []
        for n, r in rows:
            s = r["steps"][key]
            cells.append(fmt(s["all"], 3))
            if n >= 200:
                cells += [fmt(s["first100"], 3), fmt(s["last100"], 3)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def load_steps(out):
    """Per-step times of netcell operations: {(kind, n): {(op, step): [ms per operation]}}."""
    steps = {}
    for path in glob.glob(os.path.join(out, "libsteps-n*.csv")):
        n = int(re.search(r"-n(\d+)\.csv$", path).group(1))
        d = {}
        with open(path) as f:
            for r in csv.DictReader(f):
                d.setdefault((r["op"], r["step"]), []).append(float(r["ms"]))
        steps[("lib", n)] = d
    for path in glob.glob(os.path.join(out, "clisteps-n*.raw")):
        n = int(re.search(r"-n(\d+)\.raw$", path).group(1))
        d, op, marks = {}, None, []
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                where, ns = line.rsplit("\t", 1)
                if where.startswith("begin "):
                    op, marks = where.split()[1], [("shell starts the process", int(ns))]
                    continue
                marks.append((where, int(ns)))
                if where == "returned" and op:
                    for (a, ta), (b, tb) in zip(marks, marks[1:]):
                        d.setdefault((op, f"{a} -> {b}"), []).append((tb - ta) / 1e6)
                    op = None
        steps[("cli", n)] = d
    return steps


def op_totals(d, op):
    """Whole-operation times (sum of its steps), in operation order, from one steps run."""
    return [sum(v) for v in zip(*[vals for (o, _), vals in d.items() if o == op])]


def table_steps(steps):
    if not steps:
        return []
    lines = ["### Where netcell's time goes (p50 ms per step)", "",
             "Each step is the time between two of netcell's own checkpoints (the points its "
             "crash recovery knows about), measured by the benchmark builds `netcell-bench-steps` "
             "(library) and `netcell-cli-steps` (the CLI's sources relinked with the checkpoint "
             "hook). Steps are listed in the order an operation passes them.", ""]
    for kind, title in (("lib", "library"), ("cli", "CLI")):
        runs = sorted(n for k, n in steps if k == kind)
        if not runs:
            continue
        cols = []
        for n in runs:
            cols.append((n, "all", f"N={n}"))
            if n >= 200:
                cols += [(n, "first", f"N={n}: 1–100"), (n, "last", f"N={n}: last 100")]
        lines += [f"#### {title}", "", "| operation: step | " + " | ".join(c[2] for c in cols)
                  + " |", "|---|" + "---|" * len(cols)]
        order = []
        for n in runs:
            for key in steps[(kind, n)]:
                if key not in order:
                    order.append(key)
        order.sort(key=lambda k: 0 if k[0] == "create" else 1)  # stable: keeps step order
        totals = {}
        for key in order:
            cells = []
            for n, part, _ in cols:
                v = steps[(kind, n)].get(key, [])
                v = v[:100] if part == "first" else v[-100:] if part == "last" else v
                m = median(v) if v else None
                totals[(key[0], n, part)] = totals.get((key[0], n, part), 0) + (m or 0)
                cells.append(fmt(m, 3))
            label = key[1].replace(f"{key[0]}: ", "").replace(" -> ", " → ")
            lines.append(f"| {key[0]}: {label} | " + " | ".join(cells) + " |")
        for op in ("create", "destroy"):
            lines.append(f"| **{op}: sum of step medians** | " + " | ".join(
                fmt(totals.get((op, n, part)), 2) for n, part, _ in cols) + " |")
        for op in ("create", "destroy"):  # p50 of whole operations (sums per operation)
            cells = []
            for n, part, _ in cols:
                per_op = op_totals(steps[(kind, n)], op)
                per_op = per_op[:100] if part == "first" else per_op[-100:] if part == "last" \
                    else per_op
                cells.append(fmt(median(per_op) if per_op else None, 2))
            lines.append(f"| **{op}: whole operation, p50** | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def dataplane_targets(dp):
    """The throughput targets: IPv4 paths against the veth, IPv6 ones against the IPv6 veth."""
    nc = dp.get("netcell", {})
    rows = []
    for base, paths in (("veth_world_to_ns", (
            ("nat_ns_to_internet", "NAT"), ("published_wan_to_ns", "port-forward (from wan)"),
            ("published_world_to_ns", "port-forward (from the world itself)"))),
                        ("veth6_world_to_ns", (
            ("nat6_ns_to_internet", "NAT66"),
            ("published6_wan_to_ns", "IPv6 port-forward (from wan)")))):
        ref = nc.get(base)
        plain = "plain veth" if base == "veth_world_to_ns" else "plain IPv6 veth"
        for key, name in paths:
            v = nc.get(key)
            rows.append(target_row(f"netcell {name} throughput ≥ 90 % of {plain}",
                                   100 * v / ref if v and ref else None, 90,
                                   higher_is_better=True, unit=" %"))
    return rows


def targets(runs, pairs=()):
    """(target, measured, verdict) rows; a verdict says by how much a target was missed."""
    out = []
    at100 = runs_at(runs, 100)

    def p50(tool):
        r = at100.get(tool)
        return r["setup_p50"] if r else None

    floor, lib, cli = p50("floor"), p50("lib"), p50("cli")

    def check(name, value, limit, higher_is_better=False, unit="×"):
        out.append(target_row(name, value, limit, higher_is_better, unit))

    if floor:
        if len(pairs) > 1:
            ratios = [lib_p50 / floor_p50 for _, lib_p50, floor_p50, _ in pairs]
            check(f"netcell library setup p50 ≤ 1.5 × kernel floor (N=100; median of "
                  f"{len(pairs)} alternating pairs: "
                  + ", ".join(f"{fmt(r)}×" for r in ratios) + ")", median(ratios), 1.5)
        else:
            check("netcell library setup p50 ≤ 1.5 × kernel floor (N=100)",
                  lib / floor if lib else None, 1.5)
        clirt = p50("clirt")
        check("netcell CLI setup p50 ≤ 2.5 × kernel floor (N=100, started by bash)",
              cli / floor if cli else None, 2.5)
        if clirt:
            check("netcell CLI setup p50 ≤ 2.5 × kernel floor (N=100, started by the runtime "
                  "driver)", clirt / floor, 2.5)
        true_ms = (at100.get("cli") or {}).get("meta", {}).get("exec_true_p50_ms")
        if true_ms and cli:
            out.append(("(context) bash starting /bin/true, same loop, same world",
                        f"{fmt(true_ms)} ms = {fmt(true_ms / floor)}× the floor",
                        "the lower bound of any one-process-per-operation CLI here"))
            out.append(("(context) netcell CLI p50 minus that process start",
                        f"{fmt(cli - true_ms)} ms = {fmt((cli - true_ms) / floor)}× the floor",
                        "netcell's own work in the CLI"))
    # Each peer against the CLI started the same way: the shell scripts from bash like `cli`,
    # netavark and the CNI plugins from the Python driver like `clirt`.
    for tool, factor, ref in (("batch", 10, "cli"), ("netavark", 30, "clirt"),
                              ("cni", 50, "clirt")):
        v, mine = p50(tool), p50(ref) or (p50("cli") if ref == "clirt" else None)
        how = "both started by bash" if ref == "cli" else "both started by the runtime driver"
        if ref == "clirt" and not p50("clirt"):
            how = "netcell started by bash, the peer by the runtime driver"
        check(f"netcell CLI ≥ {factor}× faster than {SHORT[tool]} (setup p50, N=100; {how})",
              v / mine if v and mine else None, factor, higher_is_better=True)
    # The CNI plugins on their own: the main plugins' ADD, without `ip netns add` and loopback.
    cni_ref, ncni = at100.get("cni"), at100.get("ncni")
    check("netcell's CNI plugin ADD ≥ 20× faster than bridge + host-local + portmap (the main "
          "plugins' ADD p50, N=100, both exec'd by the runtime driver)",
          cni_ref["add_p50"] / ncni["add_p50"]
          if cni_ref and ncni and cni_ref.get("add_p50") and ncni.get("add_p50") else None,
          20, higher_is_better=True)
    r = runs.get(("ncni", 1000))
    check("netcell's CNI plugin: ADD p50 of 901–1,000 within 1.2× of 1–100",
          r.get("add_growth") if r else None, 1.2)
    for tool in ("lib", "cli"):
        r = runs.get((tool, 1000))
        check(f"{SHORT[tool]}: setup p50 of 901–1,000 within 1.2× of 1–100",
              r.get("growth") if r else None, 1.2)
    for tool in ("lib", "cli"):
        r = runs.get((tool, 10000))
        check(f"{SHORT[tool]}: setup p50 of 9,901–10,000 within 1.5× of 1–100",
              r.get("growth") if r else None, 1.5)
    return out


def reference_rows(runs):
    at100 = runs_at(runs, 100)
    lines = ["### Peers against the reference figures (setup p50, N = 100)", "",
             "| tool | reference p50 (earlier measurement) | this run | this run ÷ reference |",
             "|---|---|---|---|"]
    for tool, ref in REFERENCE_P50.items():
        r = at100.get(tool)
        v = r["setup_p50"] if r else None
        lines.append(f"| {SHORT[tool]} | {ref} ms | {fmt(v)} ms | "
                     f"{fmt(v / ref) if v else '—'} |")
    return lines


def rolling_median(values, window=25):
    half = window // 2
    return [median(values[max(0, i - half):i + half + 1]) for i in range(len(values))]


def plot(runs, out, min_n, max_n, name, title, extra=()):
    """One line per tool (its largest run in [min_n, max_n]) plus `extra` (label, values)."""
    chosen = [(t, runs[(t, n)]) for t, _ in TOOLS for n in sorted({k[1] for k in runs})
              if (t, n) in runs and min_n <= n <= max_n and runs[(t, n)]["created"] > 1]
    # One line per tool: its largest run in range.
    best = {}
    for t, r in chosen:
        if t not in best or r["n"] > best[t]["n"]:
            best[t] = r
    if not best and not extra:
        return None
    window = 25 if max_n <= 1000 else 101
    plotdir = os.path.join(out, "plot")
    os.makedirs(plotdir, exist_ok=True)
    series = []
    for t, _ in TOOLS:
        if t not in best:
            continue
        r = best[t]
        dat = os.path.join(plotdir, f"{name}-{t}.dat")
        with open(dat, "w") as f:
            for i, v in enumerate(rolling_median(r["setup"], window), 1):
                f.write(f"{i} {v:.4f}\n")
        series.append((dat, f"{SHORT[t]} (N={r['created']})"))
    for k, (label, values) in enumerate(extra):
        dat = os.path.join(plotdir, f"{name}-extra{k}.dat")
        with open(dat, "w") as f:
            for i, v in enumerate(rolling_median(values, window), 1):
                f.write(f"{i} {v:.4f}\n")
        series.append((dat, label))
    png = os.path.join(out, f"{name}.png")
    script = [
        "set terminal pngcairo size 1100,650 font ',11'",
        f"set output '{png}'",
        f"set title '{title}'",
        "set xlabel 'namespace number (all earlier ones still alive)'",
        f"set ylabel 'setup latency, ms (rolling median of {window}, log scale)'",
        "set logscale y", "set grid ytics mytics xtics", "set key outside right top",
    ]
    script.append("plot " + ", ".join(f"'{d}' using 1:2 with lines lw 2 title '{lab}'"
                                      for d, lab in series))
    subprocess.run(["gnuplot"], input="\n".join(script).encode(), check=True)
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--publish")
    ap.add_argument("--expect", default=",".join(t for t, _ in TOOLS),
                    help="tools that must have a run (comma-separated)")
    args = ap.parse_args()
    out = args.out
    runs = load_runs(out)
    dp = load_dataplane(out)
    machine = open(os.path.join(out, "machine.txt")).read() if os.path.exists(
        os.path.join(out, "machine.txt")) else ""

    problems = []
    for (tool, n), r in sorted(runs.items()):
        if r["verify_status"] != 0:
            problems.append(f"{tool} N={n}: namespace check failed (status {r['verify_status']})")
        if r["created"] == 0:
            problems.append(f"{tool} N={n}: no namespace was created")
    present = {t for t, _ in runs}
    for tool in args.expect.split(","):
        if tool in LABEL and tool not in present:
            problems.append(f"{tool}: no run found")
        if tool == "dataplane" and args.mode == "full":
            problems += [f"data plane {t}: no run found" for t in ("netcell", "classic")
                         if t not in dp]
        if tool in policy_report.TOOLS + policy_report.IPV6_TOOLS and not glob.glob(
                os.path.join(out, f"{tool}-n*.json")):
            problems.append(f"{tool}: no run found")
    policy_md, policy_summary, _, policy_problems = policy_report.section(out, args.mode)
    problems += policy_problems
    ipv6_md, ipv6_summary, _, ipv6_problems = policy_report.ipv6_section(out, args.mode)
    problems += ipv6_problems
    main_present = bool(runs)

    md = []
    if not main_present:
        pass
    elif args.mode == "full":
        md += table_basic(runs_at(runs, 100), "Setup and teardown at N = 100") + [""]
        md += table_growth(runs_at(runs, 1000), 1000) + [""]
        md += table_10k(runs, load_steps(out)) + [""]
    else:
        md += table_basic(runs_at(runs, 100, fallback_smallest=True),
                          "Smoke run (small N; timings not asserted)") + [""]
    pairs = floor_pairs(out) if args.mode == "full" else []
    for name, _, _, status in pairs:
        if name != "r1" and status != 0:
            problems.append(f"lib N=100 ({name}): namespace check failed (status {status})")
    tg = targets(runs, pairs) if main_present else []
    if main_present:
        md += ["### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
        md += [f"| {a} | {b} | {c} |" for a, b, c in tg] + [""]
        md += reference_rows(runs) + [""]
        for part in (table_cni(runs), table_podman(out)):
            md += part + ([""] if part else [])
        md += table_memory(runs) + [""]
        md += table_steps(load_steps(out)) + [""]
        md += table_floor_steps(runs) + [""]
        md += table_verify(runs) + [""]
        speed = table_speed(out)
        if speed:
            md += speed + [""]
        md += ["### Machine and command", "", "```", machine.strip(), "```", ""]
    main_md = md
    # The data plane has a part of its own, so that a run of it alone (--tools dataplane)
    # publishes it without the main tables.
    dataplane_md, dp_targets = [], dataplane_targets(dp) if dp else []
    if dp:
        dataplane_md += table_dataplane(dp) + [""]
        six = table_dataplane6(dp)
        if six:
            dataplane_md += six + [""]
        dataplane_md += ["### Throughput targets", "", "| target | measured | verdict |",
                         "|---|---|---|"]
        dataplane_md += [f"| {a} | {b} | {c} |" for a, b, c in dp_targets] + [""]
        if not main_present:
            dataplane_md += ["### Machine and command", "", "```", machine.strip(), "```", ""]
    md = main_md + dataplane_md + policy_md + ipv6_md
    if problems:
        md += ["### Problems in this run", ""] + [f"- {p}" for p in problems] + [""]

    pngs = []
    if not main_present:
        pass
    elif args.mode == "full":
        pngs.append(plot(runs, out, 100, 1000, "setup-vs-n",
                         "Setup latency per private namespace vs N (one machine, one run)"))
        extra = []
        for (kind, n), d in sorted(load_steps(out).items()):
            if kind == "lib" and n >= 5000:
                extra.append((f"netcell lib, breakdown run (N={n})", op_totals(d, "create")))
        pngs.append(plot({k: v for k, v in runs.items() if k[0] in ("lib", "cli", "floor")}, out, 1000,
                         10000, "setup-vs-n-10k", "netcell setup latency to N = 10,000",
                         extra))
    else:
        pngs.append(plot(runs, out, 1, 1000, "setup-vs-n", "Setup latency (smoke run)"))

    report = "\n".join(md)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    summary = {f"{t}-n{n}": {k: v for k, v in r.items() if k not in ("setup", "meta")}
               for (t, n), r in runs.items()}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"runs": summary, "dataplane": dp, "targets": tg + dp_targets,
                   "policy": policy_summary, "ipv6": ipv6_summary,
                   "problems": problems}, f, indent=1)
    print(report)

    if args.publish:
        docs = args.publish
        names = {"setup-vs-n.png": "benchmarks-setup.png",
                 "setup-vs-n-10k.png": "benchmarks-setup-10k.png"}
        for png in filter(None, pngs):
            shutil.copy(png, os.path.join(docs, names[os.path.basename(png)]))
        path = os.path.join(docs, "BENCHMARKS.md")
        text = open(path).read() if os.path.exists(path) else "# netcell benchmarks\n"
        main_problems = [p for p in problems if p not in policy_problems + ipv6_problems]
        parts = [("bench", main_md + (["### Problems in this run", ""] +
                                      [f"- {p}" for p in main_problems] + [""]
                                      if main_problems else []))]
        parts.append(("bench-dataplane", dataplane_md))
        parts.append(("bench-policy", policy_md + (["#### Problems in this run", ""] + [
            f"- {p}" for p in policy_problems] + [""] if policy_problems else [])))
        parts.append(("bench-ipv6", ipv6_md + (["#### Problems in this run", ""] + [
            f"- {p}" for p in ipv6_problems] + [""] if ipv6_problems else [])))
        for name, lines in parts:
            if not lines or (name == "bench" and not main_present):
                continue
            begin, end = f"<!-- {name}:begin (generated by bench/run --full) -->", \
                f"<!-- {name}:end -->"
            if begin not in text or end not in text:
                text += f"\n{begin}\n{end}\n"
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{begin}\n" + "\n".join(lines) + f"\n{end}{tail}"
        with open(path, "w") as f:
            f.write(text)
    if problems:
        print("PROBLEMS:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The egress-policy and resolver part of a bench/run results directory (issue 14), for report.py.

  section(out, mode) -> (markdown lines, summary dict, targets, problems)

Reads OUT/{pol0,pol,polsteps0,polsteps,clipol0,clipol}-n{N}[-rK].{csv,json,check.json,verify,
steps.csv}, OUT/resolver-n{N}.{json,verify}, OUT/speed.csv and OUT/machine.txt. Every target is a
ratio or a count from this one run; a missed one says by how much.
"""
import csv
import difflib
import glob
import json
import os
import re

from benchstats import fmt, median, pct
from benchstats import target_row as check

TOOLS = ("pol0", "pol", "polsteps0", "polsteps", "clipol0", "clipol", "resolver")
IPV6_TOOLS = ("v4", "dual")
LIMIT_CREATE = 1.25      # policy create p50 ÷ create without a policy, every block of 100
LIMIT_DUAL = 1.3         # dual-stack create p50 ÷ IPv4-only (issue 15), every block of 100
POLICY = ("without a policy", "20 rules + 5 domains", "policy ÷ none")
PAIRS = (("pol0", "pol", "library", POLICY, LIMIT_CREATE,
          "create p50 with a policy (20 rules + 5 domains) ≤ 1.25 × without"),
         ("polsteps0", "polsteps", "library, breakdown build", POLICY, None, None),
         ("clipol0", "clipol", "CLI", POLICY, LIMIT_CREATE,
          "create p50 with a policy (20 rules + 5 domains) ≤ 1.25 × without"))
DUAL_PAIRS = (("v4", "dual", "library, dual stack", ("IPv4-only", "dual-stack", "dual ÷ IPv4"),
               LIMIT_DUAL, "dual-stack create p50 ≤ 1.3 × IPv4-only"),)
LIMIT_THROUGHPUT = 95.0  # % of the same path without a policy
LIMIT_ADDED_MS = 0.3     # resolver p50 over the stub, ms
LIMIT_QPS = 10000.0      # sustained across 100 namespaces
LIMIT_RSS_KIB = 32 * 1024


def load_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:
        return None


def load_runs(out):
    """{(tool, n, repeat): run} for the policy create tools."""
    runs = {}
    for path in glob.glob(os.path.join(out, "*-n*.csv")):
        m = re.match(r"(pol0|pol|polsteps0|polsteps|clipol0|clipol|v4|dual)-n(\d+)(?:-(r\d+))?"
                     r"\.csv$",
                     os.path.basename(path))
        if not m:
            continue
        tool, n, repeat = m.group(1), int(m.group(2)), m.group(3) or "r1"
        base = path[:-4]
        with open(path) as f:
            rows = list(csv.DictReader(f))
        verify = []
        if os.path.exists(base + ".verify"):
            with open(base + ".verify") as f:
                verify = [line.rstrip("\n") for line in f if line.strip()]
        runs[(tool, n, repeat)] = {
            "tool": tool, "n": n, "repeat": repeat,
            "setup": [float(r["setup_ms"]) for r in rows],
            "teardown": [float(r["teardown_ms"]) for r in rows if float(r["teardown_ms"]) >= 0],
            "meta": load_json(base + ".json") or {},
            "check": load_json(base + ".check.json") or {},
            "verify": verify, "base": base,
        }
    return runs


def blocks(values, size=100):
    return [values[k:k + size] for k in range(0, len(values), size) if values[k:k + size]]


def ratio(a, b):
    return a / b if a is not None and b else None


def create_tables(runs, problems, pair_specs=PAIRS):
    """Per pair (PAIRS: per interface, without / with a policy; DUAL_PAIRS): p50 per block of
    100 of each tool, and the ratio."""
    lines, targets, summary = [], [], {}
    for none_tool, rules_tool, label, words, limit, target in pair_specs:
        pairs = sorted({(n, rep) for (t, n, rep) in runs if t in (none_tool, rules_tool)})
        pairs = [(n, rep) for n, rep in pairs
                 if (none_tool, n, rep) in runs and (rules_tool, n, rep) in runs]
        if not pairs:
            continue
        n = max(p[0] for p in pairs)
        pairs = [p for p in pairs if p[0] == n]
        size = 100 if n >= 200 else n
        nblocks = max(len(blocks(runs[(t, n, rep)]["setup"], size))
                      for rep in (r for _, r in pairs) for t in (none_tool, rules_tool))
        heads = [f"{k * size + 1}–{(k + 1) * size}" for k in range(nblocks)]
        lines += [f"#### Create, {label}: p50 ms per block of {size} namespaces (all kept alive)",
                  "", "| run | " + " | ".join(heads) + " | all: p50 | all: p95 | teardown p50 |",
                  "|---|" + "---|" * (nblocks + 3)]
        pooled = {none_tool: [[] for _ in range(nblocks)], rules_tool: [[] for _ in range(nblocks)]}
        for _, rep in pairs:
            per = {}
            for tool in (none_tool, rules_tool):
                r = runs[(tool, n, rep)]
                b = blocks(r["setup"], size)
                per[tool] = [median(x) for x in b]
                for k, x in enumerate(b):
                    pooled[tool][k] += x
                what = words[0] if tool == none_tool else words[1]
                lines.append(f"| {label}, {what} ({rep}) | " + " | ".join(fmt(v) for v in per[tool])
                             + f" | {fmt(median(r['setup']))} | {fmt(pct(r['setup'], 0.95))} | "
                             f"{fmt(median(r['teardown']))} |")
                if r["meta"].get("failed") or len(r["setup"]) < n:
                    problems.append(f"{tool} N={n} ({rep}): {len(r['setup'])} of {n} created")
            lines.append(f"| **ratio {words[2]} ({rep})** | " + " | ".join(
                fmt(ratio(a, b)) + "×" for a, b in zip(per[rules_tool], per[none_tool])) +
                " | " + fmt(ratio(median(runs[(rules_tool, n, rep)]["setup"]),
                                  median(runs[(none_tool, n, rep)]["setup"]))) + "× | | |")
        block_ratios = [ratio(median(a), median(b)) if a and b else None
                        for a, b in zip(pooled[rules_tool], pooled[none_tool])]
        if len(pairs) > 1:
            lines.append(f"| **ratio of the pooled p50s ({len(pairs)} pairs)** | " + " | ".join(
                fmt(x) + "×" for x in block_ratios) + " | | | |")
        first = {t: pooled[t][0] for t in pooled}
        last = {t: pooled[t][-1] for t in pooled}
        p95 = {t: (pct(first[t], 0.95), pct(last[t], 0.95)) for t in pooled}
        lines += ["", f"First {size} against last {size} created (pooled over {len(pairs)} "
                  f"run{'s' if len(pairs) > 1 else ''} of each): {words[0]} p50 "
                  f"{fmt(median(first[none_tool]))} → {fmt(median(last[none_tool]))} ms, p95 "
                  f"{fmt(p95[none_tool][0])} → {fmt(p95[none_tool][1])} ms; {words[1]} p50 "
                  f"{fmt(median(first[rules_tool]))} → {fmt(median(last[rules_tool]))} ms, p95 "
                  f"{fmt(p95[rules_tool][0])} → {fmt(p95[rules_tool][1])} ms.", ""]
        worst = max((x for x in block_ratios if x is not None), default=None)
        summary[label] = {"n": n, "pairs": [rep for _, rep in pairs], "block_ratios": block_ratios,
                          "worst_block_ratio": worst,
                          "first_p50": {t: median(first[t]) for t in first},
                          "last_p50": {t: median(last[t]) for t in last}}
        if limit is not None:
            where = (f"worst of {len(block_ratios)} blocks of {size}; first {fmt(block_ratios[0])}×,"
                     f" last {fmt(block_ratios[-1])}×")
            overall = [ratio(median(runs[(rules_tool, n, rep)]["setup"]),
                             median(runs[(none_tool, n, rep)]["setup"])) for _, rep in pairs]
            where += "; all: " + ", ".join(fmt(x) + "×" for x in overall)
            targets.append(check(f"{target}, N = 1..{n:,} all alive ({label}; {where})", worst,
                                 limit))
    return lines, targets, summary


def throughput_table(runs):
    lines, targets, summary = [], [], {}
    rows = []
    for (tool, n, rep), r in sorted(runs.items()):
        c = r["check"]
        if tool == "pol" and c.get("iperf_policy_gbps"):
            pol = [x for x in c["iperf_policy_gbps"] if x is not None]
            none = [x for x in c.get("iperf_no_policy_gbps", []) if x is not None]
            rows.append((f"{n:,} namespaces with their policies ({rep}): n{n} through its allowed "
                         "rule / x0 without a policy, same path, alternating", pol, none, n, rep))
        if tool == "pol0" and c.get("iperf_no_policy_gbps"):
            none = [x for x in c["iperf_no_policy_gbps"] if x is not None]
            rows.append((f"{n:,} namespaces without a policy ({rep}): n{n}", [], none, n, rep))
    if not rows:
        return lines, targets, summary
    secs = next((r["check"].get("iperf_seconds") for r in runs.values()
                 if r["check"].get("iperf_seconds")), "?")
    lines += [f"#### TCP throughput namespace → internet (iperf3, 1 stream, {secs} s a run)", "",
              "Gbit/s of each run, and the median; the same server in `wan` (203.0.113.2, TCP "
              "port 30000 + N, which namespace N's policy allows). The policy and no-policy runs "
              "alternate; the ratio is the median of the ratios of each such pair (the machine's "
              "speed drifts between pairs), the ratio of the medians in parentheses.", "",
              "| world | with the policy | without a policy | policy ÷ none |",
              "|---|---|---|---|"]
    ratios = []
    for label, pol, none, n, rep in rows:
        rt = median([100 * a / b for a, b in zip(pol, none) if b]) if pol and none else None
        if rt is not None:
            ratios.append(rt)
            summary[rep] = {"policy_gbps": pol, "no_policy_gbps": none, "percent": rt}
        of_medians = (f" ({fmt(100 * median(pol) / median(none), 0)} %)" if rt is not None
                      else "")
        lines.append(f"| {label} | {', '.join(fmt(x) for x in pol) or '—'} (median "
                     f"{fmt(median(pol))}) | {', '.join(fmt(x) for x in none)} (median "
                     f"{fmt(median(none))}) | "
                     f"{fmt(rt, 0) + ' %' + of_medians if rt is not None else '—'} |")
    lines.append("")
    if ratios:
        loaded = max(n for _, pol, _, n, _ in rows if pol)
        targets.append(check(f"throughput through an allowed rule ≥ 95 % of the same path without "
                             f"a policy, {loaded:,} policies loaded (the worse of {len(ratios)} "
                             "worlds: "
                             + ", ".join(f"{fmt(x, 0)} %" for x in ratios) + ")", min(ratios),
                             LIMIT_THROUGHPUT, higher_is_better=True, unit=" %"))
    return lines, targets, summary


def resolver_tables(out, runs, problems):
    lines, targets, summary = [], [], {}
    path = max(glob.glob(os.path.join(out, "resolver-n*.json")), default=None,
               key=lambda p: int(re.search(r"-n(\d+)\.json$", p).group(1)))
    res = load_json(path) if path else None
    if path and res is None:
        problems.append(f"resolver: {os.path.basename(path)} unreadable")
    lookups = [(rep, r) for (t, n, rep), r in sorted(runs.items())
               if t in ("pol", "clipol") and r["check"].get("dns_first")]
    if res:
        m = res["namespaces_each"]
        lat = res["latency"]
        names = [("netcell", "netcell's resolver, policy namespace n1 (name learned already)"),
                 ("netcell_new_name", "netcell's resolver, n2, a new name every query (each answer "
                  "learned: a kernel update before it is released)"),
                 ("stub_from_private", "the stub directly, from d1 (private, no policy)"),
                 ("dnsmasq", "dnsmasq as a plain forwarder on the host, from b1 (bridged, no "
                  "policy)"),
                 ("stub_from_bridged", "the stub directly, from b1")]
        base = {"netcell": "stub_from_private", "netcell_new_name": "stub_from_private",
                "dnsmasq": "stub_from_bridged"}
        lines += ["#### Lookup latency (one query outstanding, the paths taking turns)", "",
                  f"µs from send to answer, {lat['netcell']['sent']:,} queries per path; \"added\" "
                  "is the p50 over the stub asked directly over the same path.", "",
                  "| path | p50 | p95 | p99 | added p50 | lost |", "|---|---|---|---|---|---|"]
        for key, label in names:
            x = lat.get(key, {})
            added = (x["p50_us"] - lat[base[key]]["p50_us"]) if key in base and x else None
            lines.append(f"| {label} | {fmt(x.get('p50_us'), 1)} | {fmt(x.get('p95_us'), 1)} | "
                         f"{fmt(x.get('p99_us'), 1)} | "
                         f"{fmt(added, 1) if added is not None else ''} | {x.get('lost', '—')} |")
        added_ms = (lat["netcell"]["p50_us"] - lat["stub_from_private"]["p50_us"]) / 1000
        added_dnsmasq_ms = (lat["dnsmasq"]["p50_us"] - lat["stub_from_bridged"]["p50_us"]) / 1000
        summary["added_p50_ms"] = added_ms
        summary["added_p50_ms_dnsmasq"] = added_dnsmasq_ms
        targets.append(check(f"resolver p50 added latency ≤ 0.3 ms over the stub directly "
                             f"(dnsmasq in the same run: {fmt(added_dnsmasq_ms, 3)} ms)", added_ms,
                             LIMIT_ADDED_MS, unit=" ms"))
        server = {"netcell": f"netcell's resolver ({m} policy namespaces)",
                  "dnsmasq": f"dnsmasq forwarder ({m} bridged namespaces)",
                  "stub": f"the stub directly ({m} bridged namespaces)"}
        rate = res["rate_per_namespace"]
        offered = rate * m
        lines += ["", f"#### Queries a second across {m} namespaces", "",
                  "One load generator process (`bench/dns_load.cc`) with a socket inside each "
                  "namespace; the three servers in turn. Paced rounds: each namespace asks "
                  f"{rate} a second (offered: {offered:,} a second), at most {res['window']} "
                  "outstanding; the last run has no cap (a closed loop of "
                  f"{res['window']} outstanding per namespace: the ceiling). \"Queries a second\" "
                  "counts answers that came back within the run; a query unanswered after 1 s is "
                  "lost; latency under load in µs.", "",
                  "| run | server | queries a second | sent | lost | errors | p50 | p95 | p99 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        qps = {"netcell": [], "dnsmasq": [], "stub": []}
        lost = {"netcell": 0, "dnsmasq": 0, "stub": 0}
        sent = {"netcell": 0, "dnsmasq": 0, "stub": 0}
        runs_ = [(f"paced {k}", rnd) for k, rnd in enumerate(res["load"], 1)]
        if res.get("ceiling"):
            runs_.append(("no cap", res["ceiling"]))
        ceiling = {}
        for name, rnd in runs_:
            for key in ("netcell", "dnsmasq", "stub"):
                x = rnd.get(key)
                if not x:
                    continue
                if name == "no cap":
                    ceiling[key] = x["qps"]
                else:
                    qps[key].append(x["qps"])
                    lost[key] += x["lost"]
                    sent[key] += x["sent"]
                lines.append(f"| {name} | {server[key]} | {fmt(x['qps'], 0)} | {x['sent']:,} | "
                             f"{x['lost']:,} | {x['error']:,} | {fmt(x['p50_us'], 0)} | "
                             f"{fmt(x['p95_us'], 0)} | {fmt(x['p99_us'], 0)} |")
        summary["qps_paced"] = qps
        summary["lost_paced"] = lost
        summary["qps_ceiling"] = ceiling
        low = min(qps["netcell"]) if qps["netcell"] else None
        loss = 100 * lost["netcell"] / sent["netcell"] if sent["netcell"] else 0
        # Sustained: the offered load served, at most 0.1 % lost.
        served = low is not None and low >= 0.995 * offered and loss <= 0.1
        secs = res["load"][0]["netcell"]["seconds"] if res["load"] else None
        name = (f"resolver ≥ 10,000 queries/s sustained across {m} namespaces ({rate} a second "
                f"each offered, {len(qps['netcell'])} rounds of {fmt(secs, 0)} s: the lowest "
                f"answered rate; {fmt(loss, 3)} % lost; ceiling "
                f"without a cap {fmt(ceiling.get('netcell'), 0)} q/s, dnsmasq's "
                f"{fmt(ceiling.get('dnsmasq'), 0)} q/s)")
        if low is None or offered < LIMIT_QPS:
            targets.append((name, f"{fmt(low, 0)} q/s" if low else "not measured",
                            f"not measured (offered {offered:,} q/s, below the target's "
                            f"{LIMIT_QPS:,.0f})"))
        elif served:
            targets.append((name, f"{fmt(low, 0)} q/s", "met"))
        else:
            targets.append((name, f"{fmt(low, 0)} q/s", f"MISSED: {fmt(low, 0)} q/s answered of "
                            f"{offered:,} offered, {fmt(loss, 3)} % lost"))
        rss = res["rss_kib"]
        lines += ["", "#### Memory (VmRSS, KiB, from /proc)", "", "| process | when | VmRSS | peak "
                  "(VmHWM) |", "|---|---|---|---|",
                  f"| netcell-service | resolver world: {m} policy namespaces, after every run "
                  f"| {rss['netcell_service']:,} | {rss['netcell_service_hwm']:,} |",
                  f"| dnsmasq as a plain forwarder (--cache-size=0) | the same world, after every "
                  f"run | {rss['dnsmasq_forwarder']:,} | {rss['dnsmasq_forwarder_hwm']:,} |",
                  f"| dnsmasq, the stub (authoritative) | the same | {rss['stub']:,} | |"]
        summary["rss_kib"] = rss
    rss_1000 = []
    for rep, r in lookups:
        c = r["check"]
        n = r["n"]
        if c.get("service_rss_kib_after_lookups"):
            lines.append(f"| netcell-service | {n:,} policy namespaces ({r['tool']}, {rep}): "
                         f"before their lookups → after each did two "
                         f"| {c['service_rss_kib_before_lookups']:,} → "
                         f"{c['service_rss_kib_after_lookups']:,} | {c['service_hwm_kib']:,} |")
            if r["tool"] == "pol":
                rss_1000.append((c["service_rss_kib_after_lookups"], c["service_hwm_kib"]))
    if res or lookups:
        lines.append("")
    if rss_1000:
        worst = max(max(a, b) for a, b in rss_1000)
        fwd = res["rss_kib"]["dnsmasq_forwarder_hwm"] if res else None
        targets.append(check(f"netcell-service resident memory ≤ 32 MiB with "
                             f"{max(r['n'] for _, r in lookups):,} namespaces (peak VmHWM, the "
                             f"worse of {len(rss_1000)} worlds; dnsmasq forwarder "
                             f"{fmt(fwd / 1024 if fwd else None)} MiB)", worst / 1024,
                             LIMIT_RSS_KIB / 1024, unit=" MiB"))
    if lookups:
        lines += ["#### Every namespace's first lookup, with all of them alive", "",
                  "One after the other, through each namespace's resolver; a first answer makes "
                  "netcell add the address to the namespace's learned set before releasing it. "
                  "Up to 6 tries of 1 s (a stub resolver's retry); \"retried\" lookups count from "
                  "their first try.", "",
                  "| world | lookups | answered | retried | lost | p50 µs | p95 µs | p99 µs | again:"
                  " p50 µs | again: p95 µs | learned elements | kernel ARP-table overflow "
                  "messages meanwhile |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for rep, r in lookups:
            c = r["check"]
            a, b = c["dns_first"]["first"], (c.get("dns_again") or {}).get("again", {})
            lines.append(f"| {r['tool']} N={r['n']:,} ({rep}) | {a['sent']:,} | {a['ok']:,} | "
                         f"{a.get('retried', 0)} | {a['lost']} | {fmt(a['p50_us'], 0)} | "
                         f"{fmt(a['p95_us'], 0)} | {fmt(a['p99_us'], 0)} | "
                         f"{fmt(b.get('p50_us'), 0)} | {fmt(b.get('p95_us'), 0)} | "
                         f"{c.get('learned_elements')} | "
                         f"{c.get('neighbour_overflow_messages', '—')} |")
        lines.append("")
    return lines, targets, summary, res


def steps_table(out):
    """p50 ms per checkpoint-to-checkpoint step of create, without / with a policy."""
    data, seqs, n = {}, {}, 0
    for tool in ("polsteps0", "polsteps"):
        paths = sorted(glob.glob(os.path.join(out, f"{tool}-n*.steps.csv")))
        if not paths:
            continue
        n = max(n, int(re.search(r"-n(\d+)\.steps\.csv$", paths[-1]).group(1)))
        d, per_op = {}, {}
        with open(paths[-1]) as f:
            for r in csv.DictReader(f):
                if r["op"] == "create":
                    d.setdefault(r["step"], []).append(float(r["ms"]))
                    per_op.setdefault(r["i"], []).append(r["step"])
        data[tool] = d
        # The sequence most creates pass (the first one also makes the pool, and so on).
        counts = {}
        for steps in per_op.values():
            counts[tuple(steps)] = counts.get(tuple(steps), 0) + 1
        seqs[tool] = list(max(counts, key=counts.get)) if counts else []
    if len(data) < 2:
        return []
    # Both sequences merged in order: the policy's, with the steps only the other has in place.
    order = []
    matcher = difflib.SequenceMatcher(a=seqs["polsteps0"], b=seqs["polsteps"], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        for step in seqs["polsteps0"][a0:a1] + (seqs["polsteps"][b0:b1] if op != "equal" else []):
            if step not in order:
                order.append(step)
    size = 100 if n >= 200 else n
    lines = ["#### Where a create's time goes, without and with a policy (p50 ms per step)", "",
             "Between consecutive checkpoints of netcell's crash recovery (`fault_point`), "
             "recorded by `netcell-bench-policy-steps` (the same tool linked with "
             f"`bench/steps_hook.cc`); the first {size} and the last {size} of {n:,} creates; "
             "the steps most creates pass.", "",
             f"| step | none: 1–{size} | none: last {size} | policy: 1–{size} | policy: last "
             f"{size} |", "|---|---|---|---|---|"]
    totals = [0.0] * 4
    for step in order:
        cells = []
        for k, (tool, part) in enumerate((("polsteps0", 0), ("polsteps0", 1), ("polsteps", 0),
                                          ("polsteps", 1))):
            v = data[tool].get(step, []) if step in seqs[tool] else []
            v = v[:size] if part == 0 else v[-size:]
            m = median(v) if v else None
            totals[k] += m or 0
            cells.append(fmt(m, 3))
        lines.append(f"| {step.replace(' -> ', ' → ')} | " + " | ".join(cells) + " |")
    lines.append("| **sum of step medians** | " + " | ".join(fmt(t, 2) for t in totals) + " |")
    return lines + [""]


def checks_table(out, runs, res_present):
    lines = ["#### Checks (real traffic while all namespaces exist)", "", "| run | check | "
             "result | detail |", "|---|---|---|---|"]
    any_line = False
    items = [(f"{t} N={n} ({rep})", r["verify"]) for (t, n, rep), r in sorted(runs.items())]
    for path in sorted(glob.glob(os.path.join(out, "resolver-n*.verify"))):
        with open(path) as f:
            items.append((os.path.basename(path)[:-7], [x.rstrip("\n") for x in f if x.strip()]))
    for name, verify in items:
        for line in verify:
            parts = line.split(" ", 2) + ["", ""]
            detail = parts[2].replace("|", "/")
            if len(detail) > 240:
                detail = detail[:240] + "…"
            lines.append(f"| {name} | {parts[0]} | {parts[1]} | {detail} |")
            any_line = True
    return lines + [""] if any_line else []


def speed_lines(out):
    path = os.path.join(out, "speed.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r["tool"] in TOOLS]
    if not rows:
        return []
    return ["Speed probe (ms for a fixed loop just before each run; lower is faster): " + ", ".join(
        f"{r['tool']}{'-' + r['repeat'] if r['repeat'] else ''} {r['probe_ms']}" for r in rows)
        + ".", ""]


def section(out, mode):
    problems = []
    runs = {k: v for k, v in load_runs(out).items() if k[0] not in IPV6_TOOLS}
    have_resolver = bool(glob.glob(os.path.join(out, "resolver-n*.json")))
    if not runs and not have_resolver:
        return [], {}, [], []
    for (tool, n, rep), r in sorted(runs.items()):
        st = r["meta"].get("verify_status")
        if tool in ("pol0", "pol", "clipol0", "clipol") and st != 0:
            problems.append(f"{tool} N={n} ({rep}): check failed (status {st})")
    md = ["### Egress policies and the resolver (issue 14): the tables", ""]
    if mode != "full":
        md += ["Smoke run: small N, timings recorded but not asserted.", ""]
    create_md, tg, create_sum = create_tables(runs, problems)
    tp_md, tg2, tp_sum = throughput_table(runs)
    res_md, tg3, res_sum, res = resolver_tables(out, runs, problems)
    if res and res.get("failed"):
        problems.append("resolver: a check failed (see its .verify)")
    if have_resolver and not res:
        problems.append("resolver: no results")
    targets = tg + tg2 + tg3
    md += ["#### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in targets] + [""]
    md += create_md + steps_table(out) + tp_md + res_md + checks_table(out, runs, bool(res))
    machine = {}
    mpath = os.path.join(out, "machine.txt")
    if os.path.exists(mpath):
        with open(mpath) as f:
            for line in f:
                k, _, v = line.partition(": ")
                machine.setdefault(k, v.strip())
    if machine:
        md += [f"Machine: {machine.get('cpu', '?')}, kernel {machine.get('kernel', '?')}; load "
               f"average at the start {machine.get('load average at start', '?')}, at the end "
               f"{machine.get('load average at end', '?')}; netcell {machine.get('netcell', '?')}."
               , ""]
    md += speed_lines(out)
    summary = {"create": create_sum, "throughput": tp_sum, "resolver": res_sum,
               "targets": targets, "problems": problems}
    return md, summary, targets, problems


def ipv6_section(out, mode):
    """The dual-stack create pair (issue 15): (markdown lines, summary dict, targets, problems)."""
    problems = []
    runs = {k: v for k, v in load_runs(out).items() if k[0] in IPV6_TOOLS}
    if not runs:
        return [], {}, [], []
    for (tool, n, rep), r in sorted(runs.items()):
        st = r["meta"].get("verify_status")
        if st != 0:
            problems.append(f"{tool} N={n} ({rep}): check failed (status {st})")
    md = ["### Dual stack (issue 15): dual-stack against IPv4-only creates, in lockstep", ""]
    if mode != "full":
        md += ["Smoke run: small N, timings recorded but not asserted.", ""]
    create_md, targets, create_sum = create_tables(runs, problems, DUAL_PAIRS)
    md += ["#### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in targets] + [""]
    md += create_md
    return md, {"create": create_sum, "targets": targets, "problems": problems}, targets, problems

"""Percentiles and number formatting shared by report.py and policy_report.py."""


def pct(values, p):
    """Linear-interpolated percentile (p in 0..1) of a list; None when it is empty."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values):
    return pct(values, 0.5)


def fmt(v, digits=None):
    """A figure with 2, 1 or 0 decimals by its size (or `digits`); "—" for None."""
    if v is None:
        return "—"
    if digits is None:
        digits = 2 if abs(v) < 10 else 1 if abs(v) < 100 else 0
    return f"{v:.{digits}f}"


def target_row(name, value, limit, higher_is_better=False, unit="×"):
    """(target, measured, verdict); a verdict says by how much a target was missed."""
    if value is None:
        return (name, "not measured", "—")
    ok = value >= limit if higher_is_better else value <= limit
    if ok:
        verdict = "met"
    elif higher_is_better:
        verdict = f"MISSED: {fmt(value)}{unit} instead of ≥ {fmt(limit)}{unit} " \
                  f"({fmt(100 * (1 - value / limit), 0)} % short)"
    else:
        verdict = f"MISSED: {fmt(value)}{unit} instead of ≤ {fmt(limit)}{unit} " \
                  f"({fmt(100 * (value / limit - 1), 0)} % over)"
    return (name, f"{fmt(value)}{unit}", verdict)

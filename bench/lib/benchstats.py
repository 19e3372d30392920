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

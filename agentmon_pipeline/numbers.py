"""Numbers as a person reads them: plain decimals, never `4.624e+04`."""

from __future__ import annotations

import math

import numpy as np


def plain(x: float | None, signed: bool = False) -> str:
    """46,240 / 1,877 / 12.5 / 0.0123 / 0.000042: thousands separators from 100 up, two decimals
    (trimmed) from 1 up, three significant digits below 1; '+' in front when `signed`."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-" if x is None else str(x)
    sign = "+" if signed and x > 0 else ""
    magnitude = abs(x)
    if magnitude >= 100:
        text = f"{x:,.0f}"
    elif magnitude >= 1:
        text = f"{x:,.2f}".rstrip("0").rstrip(".")
    elif magnitude == 0:
        text = "0"
    else:
        text = np.format_float_positional(x, precision=3, unique=False, fractional=False, trim="-")
    return sign + text


def p_value(p: float | None) -> str:
    """A p-value as it is reported: `p = 0.031`, or `p < 0.001` (never `1.51e-89`)."""
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "p = -"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def runs_out(day, today) -> str:
    """', runs out on 2026-12-03', or ', ran out on 2026-11-26' when that day is past."""
    if day is None:
        return ""
    return f", {'ran' if day < today else 'runs'} out on {day}"

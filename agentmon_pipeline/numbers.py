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

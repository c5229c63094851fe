"""How numbers are shown, the same in the terminal, Markdown and the Prefect artifacts.

An unknown value (NULL: no price configured, nothing to compute from) is "n/a", never 0;
an infinite cost-of-pass (priced, but nothing passed) is "∞".
"""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"
INF = "∞"


def rate(value: float | None, digits: int = 3) -> str:
    if value is None:
        return NA
    return f"{value:.{digits}f}"


def count(value: int | None) -> str:
    if value is None:
        return NA
    return f"{value:,}"


def tokens(value: float | None) -> str:
    """A token count that may be a mean or a ratio (tokens-of-pass): whole tokens; ∞ when
    nothing passed."""
    if value is None:
        return NA
    if math.isinf(value):
        return INF
    return f"{round(value):,}"


def fraction(num: int | None, den: int | None) -> str:
    if num is None or den is None:
        return NA
    return f"{num}/{den}"


def money(value: float | None) -> str:
    if value is None:
        return NA
    if math.isinf(value):
        return INF
    # Per-sample costs are fractions of a cent: keep significant digits, not 2 decimals.
    if value == 0:
        return "$0"
    if abs(value) < 1:
        # Four significant digits, positional (never 1.6e-05): 0.17, 0.001876, 0.00001599.
        decimals = 3 - math.floor(math.log10(abs(value)))
        return "$" + f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return f"${value:,.2f}"


def plain(value: Any) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return money(value) if math.isinf(value) else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def short(text: str | None, width: int = 24) -> str:
    if text is None:
        return NA
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def k_points(n: int | None) -> list[int]:
    """The k shown in tables: powers of two up to n, and n itself."""
    if not n:
        return []
    ks = [1 << i for i in range(n.bit_length()) if (1 << i) <= n]
    if ks[-1] != n:
        ks.append(n)
    return ks

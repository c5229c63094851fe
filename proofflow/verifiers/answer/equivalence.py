"""Whether two final answers are the same mathematical object.

A cheap, exact fast path in-process (canonical strings, exact rational arithmetic for plain
numbers), then sympy through math-verify in a warm worker *process* (``pool``) that is
SIGKILLed when it overruns its time limit. A timeout or a parse failure yields ``None``
("could not decide"), never a pass.

Numeric tolerance (the only places two different strings of digits can be "equal"):
- plain numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``, thousands separators) compare
  *exactly* as rationals: ``0.333`` is not ``1/3``; ``0.5`` is ``\\frac12``.
- a percent sign is dropped: ``50\\%`` equals ``50`` and also ``0.5`` (MATH references
  use both conventions; math-verify does the same).
- anything that goes to sympy uses math-verify's ``verify`` defaults: floats are compared
  after rounding to 6 decimal places (``float_rounding=6``), so ``\\pi`` is not ``3.14159``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from fractions import Fraction

from proofflow.verifiers.answer.pool import default_pool
from proofflow.verifiers.procs import NoWorkerFree

__all__ = ["Decision", "answers_equivalent", "clear_cache", "decide", "normalize_answer"]


# ------------------------------------------------------------------------ normalization

_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mbox|mathrm|textnormal|mathbf)\s*\{([^{}]*)\}")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_BASE_RE = re.compile(r"^([0-9a-zA-Z]+)_\{?(\d{1,2})\}?$")
_PLAIN_NUM_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_FRAC_RE = re.compile(r"^([+-]?)\\frac\{([+-]?[\d.]+)\}\{([+-]?[\d.]+)\}$")
_FRAC_SHORT_RE = re.compile(r"^([+-]?)\\frac(\d)(\d)$")
_SLASH_RE = re.compile(r"^([+-]?[\d.]+)/([+-]?[\d.]+)$")
_UNIT_WORDS = (
    r"cm|m|km|mm|in|inch|inches|ft|feet|foot|yd|yards?|miles?|units?|sq|square|meters?|"
    r"centimeters?|degrees?|cents?|dollars?|hours?|minutes?|seconds?|days?|weeks?|years?|"
    r"pounds?|lbs?|ounces?|oz|grams?|kg|g|liters?|ml|mph|people|students|apples|points?"
)
# A space is required: "2m" or "3g" may be a variable times a number, "2 m" is a unit.
_TRAILING_UNIT_RE = re.compile(rf"^(.*?\d)\s+(?:{_UNIT_WORDS})(?:\^?\{{?[23]\}}?)?$")


def _strip_wrappers(s: str) -> str:
    """Presentation-only LaTeX: math delimiters, spacing, \\left/\\right, \\dfrac, degrees."""
    s = s.strip()
    for pre, post in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(pre) and s.endswith(post) and len(s) >= len(pre) + len(post):
            s = s[len(pre) : len(s) - len(post)].strip()
    s = s.replace("\\left", "").replace("\\right", "")
    # Thin spaces (\! \, \;), but not the row break "\\ " of a matrix.
    s = re.sub(r"(?<!\\)\\[!,;: ]", "", s)
    s = s.replace("~", "")
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "")
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\displaystyle", "", s)
    return s.strip()


def _strip_text(s: str) -> str:
    """'15\\mbox{ cm}^2' -> '15'; '\\text{Evelyn}' -> 'Evelyn'; '5.4 cents' -> '5.4'."""
    whole = _TEXT_WRAP_RE.fullmatch(s)
    if whole:  # the whole answer is words: keep them (they are the answer)
        return whole.group(1).strip()
    # Text after a number is a unit: drop it (and a ^2/^3 on it).
    s2 = re.sub(r"(\d|\})\s*" + _TEXT_WRAP_RE.pattern + r"(?:\^\{?[23]\}?)?", r"\1", s)
    m = _TRAILING_UNIT_RE.match(s2)
    if m:
        s2 = m.group(1)
    return s2.strip()


def _from_base(s: str) -> str:
    """'40_9' -> '36'. math-verify drops the subscript (reads 40), which would accept 40."""
    m = _BASE_RE.match(s)
    if not m:
        return s
    digits, base = m.group(1), int(m.group(2))
    if not 2 <= base <= 36:
        return s
    try:
        return str(int(digits, base))
    except ValueError:
        return s


_OVERLINE_RE = re.compile(r"^([+-]?)(\d*)\.(\d*)\\overline\{(\d+)\}$")


def _repeating_decimal(s: str) -> str:
    """'0.\\overline{3}' -> '1/3', '0.1\\overline{6}' -> '1/6' (exact)."""
    m = _OVERLINE_RE.match(s.replace(" ", ""))
    if not m:
        return s
    sign, whole, fixed, rep = m.groups()
    # x = whole.fixed(rep)(rep)... = whole + (fixed.rep - fixed) / (10^len(fixed) * (10^len(rep) - 1))
    base = Fraction(int(whole or "0"))
    head = Fraction(int(fixed or "0"), 10 ** len(fixed))
    tail = Fraction(int(rep), 10 ** len(fixed) * (10 ** len(rep) - 1))
    val = base + head + tail
    val = -val if sign == "-" else val
    return f"{val.numerator}/{val.denominator}"


def _light_clean(s: str) -> tuple[str, bool]:
    """Shared by the fast path and the sympy path. Returns (clean text, had a percent)."""
    s = _strip_wrappers(s)
    # "6 \\text{ and } 7" lists two answers; make it the comma list math-verify reads as a set.
    s = re.sub(r"\\(?:text|mbox)\{\s*(?:and|or)\s*\}", ",", s)
    s = _repeating_decimal(s)
    s = _strip_text(s)
    pct = False
    if re.search(r"\\?%\s*$", s):
        pct = True
        s = re.sub(r"\\?%\s*$", "", s).strip()
    s = s.rstrip(".").strip()
    if _THOUSANDS_RE.match(s.replace(" ", "")):
        s = s.replace(",", "").replace(" ", "")
    s = _from_base(s)
    # "x = 3" -> "3": a single variable named on the left adds nothing to the value.
    m = re.match(r"^[a-zA-Z]\s*=\s*([^=<>]+)$", s)
    if m:
        s = m.group(1).strip()
    return s, pct


def _as_fraction(s: str) -> Fraction | None:
    """Exact value of a plain number: '3', '-0.25', '3/4', '\\frac{3}{4}', '\\frac34'."""
    t = s.replace(" ", "")
    try:
        if _PLAIN_NUM_RE.match(t):
            return Fraction(t)
        m = _FRAC_RE.match(t) or _FRAC_SHORT_RE.match(t)
        if m:
            sign = -1 if m.group(1) == "-" else 1
            den = Fraction(m.group(3))
            return None if den == 0 else sign * Fraction(m.group(2)) / den
        m = _SLASH_RE.match(t)
        if m:
            den = Fraction(m.group(2))
            return None if den == 0 else Fraction(m.group(1)) / den
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _fraction_key(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def normalize_answer(answer: str) -> str:
    """A cheap canonical string for grouping votes: equal keys imply equivalent answers for
    the forms handled here (plain numbers become exact reduced fractions); different keys
    do not prove inequivalence (use ``answers_equivalent`` for that)."""
    s, _ = _light_clean(answer)
    f = _as_fraction(s)
    if f is not None:
        return _fraction_key(f)
    s = re.sub(r"\s+", "", s)
    if re.fullmatch(r"\(?[A-Za-z]\)?", s):  # multiple choice: "(C)" / "C"
        s = s.strip("()").upper()
    return s


# ----------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class Decision:
    equal: bool | None
    status: str  # "fast" | "sympy" | "timeout" | "candidate_unparseable" | "reference_unparseable" | "checker_error"


def _fast(a: str, b: str) -> Decision | None:
    """Exact in-process decision for plain numbers and identical strings; None = ask sympy."""
    ca, pa = _light_clean(a)
    cb, pb = _light_clean(b)
    if not ca or not cb:
        return None
    if re.sub(r"\s+", "", ca) == re.sub(r"\s+", "", cb):
        return Decision(True, "fast")
    fa, fb = _as_fraction(ca), _as_fraction(cb)
    if fa is not None and fb is not None:
        if fa == fb:
            return Decision(True, "fast")
        if pa != pb and (fa / 100 == fb if pa else fb / 100 == fa):
            return Decision(True, "fast")  # 50% vs 0.5 (see module docstring)
        return Decision(False, "fast")
    return None


def _shape(s: str) -> str:
    t = s.strip()
    if t.startswith("\\{") and t.endswith("\\}"):
        return "set"
    if t[:1] in "([" and t[-1:] in ")]":
        return "bracketed"
    return "other"


def _decide_uncached(pred: str, gold: str, timeout_s: float) -> Decision:
    fast = _fast(pred, gold)
    if fast is not None:
        return fast
    cp, pp = _light_clean(pred)
    cg, pg = _light_clean(gold)
    if not cp:
        return Decision(None, "candidate_unparseable")
    if _shape(cp) != _shape(cg) and {_shape(cp), _shape(cg)} == {"set", "bracketed"}:
        # math-verify accepts \\{1,2\\} for the pair/interval (1,2); a set is neither.
        return Decision(False, "fast")
    # Percent signs are passed through to math-verify (it knows 50\\% = 1/2).
    sp = cp + ("\\%" if pp else "")
    sg = cg + ("\\%" if pg else "")
    try:
        resp = default_pool().compare(sg, sp, timeout_s)
    except NoWorkerFree:  # every worker busy for ACQUIRE_TIMEOUT_S: undecided, retried later
        return Decision(None, "timeout")
    except Exception:
        return Decision(None, "checker_error")
    if resp is None:
        return Decision(None, "timeout")
    if not resp.get("ok"):
        return Decision(None, "checker_error")
    if resp["equal"] is None:
        return Decision(None, str(resp.get("why", "candidate_unparseable")))
    return Decision(bool(resp["equal"]), "sympy")


_cache: dict[tuple[str, str], Decision] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 8192


def decide(pred: str, gold: str, timeout_s: float) -> Decision:
    """Cached decision. Only definite answers are cached: a timeout may succeed next time."""
    key = (pred, gold)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    d = _decide_uncached(pred, gold, timeout_s)
    if d.status not in ("timeout", "checker_error"):
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()  # majority votes repeat within a problem; old keys are cold
            _cache[key] = d
    return d


def answers_equivalent(a: str, b: str, timeout_s: float = 5.0) -> bool | None:
    """Whether candidate ``a`` equals reference ``b``; None = could not decide in time / parse."""
    return decide(a, b, timeout_s).equal


def clear_cache() -> None:
    """Forget every cached decision (benchmarks run cold)."""
    with _cache_lock:
        _cache.clear()

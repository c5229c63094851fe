"""Final-answer verifier: extract a model's final answer and decide equivalence with a reference.

Pipeline for one check (``check_answer``):

1. ``extract_answer``: last ``\\boxed{…}``/``\\fbox{…}`` (nested braces) > GSM8K ``#### N`` >
   "The (final) answer is …" > last number in the text (an explicit fallback whose use is
   recorded in ``Verdict.details["method"]``; callers can turn it off).
2. ``answers_equivalent``: a cheap, exact fast path in-process (canonical strings, exact
   rational arithmetic for plain numbers), then sympy through math-verify in a warm worker
   *process* that is SIGKILLed when it overruns its time limit. A timeout or a parse failure
   yields ``None`` ("could not decide"), never a pass.

Numeric tolerance (the only places two different strings of digits can be "equal"):
- plain numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``, thousands separators) compare
  *exactly* as rationals: ``0.333`` is not ``1/3``; ``0.5`` is ``\\frac12``.
- a percent sign is dropped: ``50\\%`` equals ``50`` and also ``0.5`` (MATH references
  use both conventions; math-verify does the same).
- anything that goes to sympy uses math-verify's ``verify`` defaults: floats are compared
  after rounding to 6 decimal places (``float_rounding=6``), so ``\\pi`` is not ``3.14159``.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from proofflow.verifiers.verdict import Outcome, Verdict

VERSION = "answer-1.1"

__all__ = [
    "VERSION",
    "Extraction",
    "extract_answer",
    "normalize_answer",
    "answers_equivalent",
    "check_answer",
]


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # the raw extracted final answer text, None if nothing found
    method: str  # "boxed" | "answer_is" | "gsm8k_hash" | "last_number" | "none"


_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b\s*")


def _balanced(text: str, open_pos: int) -> str | None:
    """Content of the brace group opening at ``open_pos`` (a ``{``), or None if unclosed."""
    depth = 0
    i = open_pos
    while i < len(text):
        ch = text[i]
        if ch == "\\":  # skip escaped characters such as \{ and \}
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_pos + 1 : i]
        i += 1
    return None


def _last_boxed(text: str) -> str | None:
    found: str | None = None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        if j < len(text) and text[j] == "{":
            inner = _balanced(text, j)
            if inner is not None:
                found = inner
        else:  # "\boxed 5": TeX takes the next token as the argument
            tok = re.match(r"[^\s$\\{}]+", text[j:])
            if tok:
                found = tok.group(0)
    return found


_HASH_RE = re.compile(r"####\s*([^\n]+)")
# "The answer is", "Final answer:", or a line that starts with "Answer:" (not "to answer: ...").
_ANSWER_IS_RE = re.compile(
    r"(?:final\s+answer|the\s+answer|^[\s*#]*answer)\s*\**\s*(?:is|:|=)\s*\**:?\s*([^\n]+)",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")


def _trim_sentence(ans: str) -> str:
    """'$\\frac{1}{2}$.' -> '\\frac{1}{2}': drop markdown bold, math delimiters, final period."""
    ans = ans.strip().strip("*").strip()
    m = re.search(r"\$([^$]+)\$", ans)
    if m:  # an inline-math span holds the answer; surrounding words are prose
        ans = m.group(1)
    else:  # "3.5 cm. Then we check..." -> "3.5 cm": stop at the end of the sentence
        ans = re.split(r"\.\s", ans, maxsplit=1)[0]
    ans = re.sub(r"[\s.]+$", "", ans)  # sentence-final period ("is 5." -> "5"; "5.0" is kept)
    return ans.strip().strip("*").strip()


def extract_answer(text: str) -> Extraction:
    """The final answer a completion commits to, and how it was found."""
    if not text or not text.strip():
        return Extraction(None, "none")
    boxed = _last_boxed(text)
    if boxed is not None and boxed.strip():
        return Extraction(boxed.strip(), "boxed")
    hashes = _HASH_RE.findall(text)
    if hashes:
        ans = _trim_sentence(hashes[-1])
        if ans:
            return Extraction(ans, "gsm8k_hash")
    said = _ANSWER_IS_RE.findall(text)
    if said:
        ans = _trim_sentence(said[-1])
        if ans:
            return Extraction(ans, "answer_is")
    nums = _NUMBER_RE.findall(text)
    if nums:
        return Extraction(nums[-1].replace(" ", ""), "last_number")
    return Extraction(None, "none")


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


# ---------------------------------------------------------------- sympy worker processes

_STARTUP_TIMEOUT_S = 60.0
_WORKER_SCRIPT = Path(__file__).with_name("_answer_worker.py")


class _Worker:
    """One warm ``_answer_worker`` process. Not thread-safe: the pool lends it to one caller."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            # By path and isolated (-I): a stray math_verify.py or sympy.py in the caller's
            # working directory must not shadow the real packages.
            [sys.executable, "-I", str(_WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so the kill takes everything
        )
        self._buf = b""
        self._ready = False

    def _readline(self, deadline: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            r, _, _ = select.select([fd], [], [], remaining)
            if not r:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("answer worker exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def compare(self, gold: str, pred: str, timeout_s: float) -> dict | None:
        """The worker's reply, or None on timeout (the worker is then dead)."""
        if not self._ready:
            line = self._readline(time.monotonic() + _STARTUP_TIMEOUT_S)
            if line is None:
                self.kill()
                raise RuntimeError("answer worker did not start")
            self._ready = True
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred}).encode() + b"\n")
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + timeout_s)
        if line is None:
            self.kill()
            return None
        return json.loads(line)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


class _Pool:
    """Workers lent out one caller at a time; a dead or timed-out worker is replaced."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._made = 0
        self._lock = threading.Lock()
        self._all: list[_Worker] = []

    def _take(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._made < self._size:
                self._made += 1
                w = _Worker()
                self._all.append(w)
                return w
        return self._idle.get()

    def _replace(self, dead: _Worker) -> None:
        # Start the replacement now so its imports overlap with whatever the caller does next.
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
            w = _Worker()
            self._all.append(w)
        self._idle.put(w)

    def compare(self, gold: str, pred: str, timeout_s: float) -> dict | None:
        w = self._take()
        try:
            resp = w.compare(gold, pred, timeout_s)
        except Exception:
            w.kill()
            self._replace(w)
            raise
        if resp is None:
            self._replace(w)
        else:
            self._idle.put(w)
        return resp

    def close(self) -> None:
        with self._lock:
            for w in self._all:
                w.kill()
            self._all.clear()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(size=max(1, min(2, os.cpu_count() or 1)))
            atexit.register(_pool.close)
        return _pool


# ----------------------------------------------------------------------------- equivalence


@dataclass(frozen=True)
class _Decision:
    equal: bool | None
    status: str  # "fast" | "sympy" | "timeout" | "candidate_unparseable" | "reference_unparseable" | "checker_error"


def _fast(a: str, b: str) -> _Decision | None:
    """Exact in-process decision for plain numbers and identical strings; None = ask sympy."""
    ca, pa = _light_clean(a)
    cb, pb = _light_clean(b)
    if not ca or not cb:
        return None
    if re.sub(r"\s+", "", ca) == re.sub(r"\s+", "", cb):
        return _Decision(True, "fast")
    fa, fb = _as_fraction(ca), _as_fraction(cb)
    if fa is not None and fb is not None:
        if fa == fb:
            return _Decision(True, "fast")
        if pa != pb and (fa / 100 == fb if pa else fb / 100 == fa):
            return _Decision(True, "fast")  # 50% vs 0.5 (see module docstring)
        return _Decision(False, "fast")
    return None


def _shape(s: str) -> str:
    t = s.strip()
    if t.startswith("\\{") and t.endswith("\\}"):
        return "set"
    if t[:1] in "([" and t[-1:] in ")]":
        return "bracketed"
    return "other"


def _decide_uncached(pred: str, gold: str, timeout_s: float) -> _Decision:
    fast = _fast(pred, gold)
    if fast is not None:
        return fast
    cp, pp = _light_clean(pred)
    cg, pg = _light_clean(gold)
    if not cp:
        return _Decision(None, "candidate_unparseable")
    if _shape(cp) != _shape(cg) and {_shape(cp), _shape(cg)} == {"set", "bracketed"}:
        # math-verify accepts \\{1,2\\} for the pair/interval (1,2); a set is neither.
        return _Decision(False, "fast")
    # Percent signs are passed through to math-verify (it knows 50\\% = 1/2).
    sp = cp + ("\\%" if pp else "")
    sg = cg + ("\\%" if pg else "")
    try:
        resp = _get_pool().compare(sg, sp, timeout_s)
    except Exception:
        return _Decision(None, "checker_error")
    if resp is None:
        return _Decision(None, "timeout")
    if not resp.get("ok"):
        return _Decision(None, "checker_error")
    if resp["equal"] is None:
        return _Decision(None, str(resp.get("why", "candidate_unparseable")))
    return _Decision(bool(resp["equal"]), "sympy")


_cache: dict[tuple[str, str], _Decision] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 8192


def _decide(pred: str, gold: str, timeout_s: float) -> _Decision:
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
    return _decide(a, b, timeout_s).equal


# ----------------------------------------------------------------------------------- check


def _reference_answer(reference: str) -> str:
    """A reference may be a bare answer or a full solution (GSM8K '#### N', MATH '\\boxed')."""
    if "####" in reference:
        hashes = _HASH_RE.findall(reference)
        if hashes:
            return hashes[-1].strip()
    if "\\boxed" in reference or "\\fbox" in reference:
        boxed = _last_boxed(reference)
        if boxed:
            return boxed.strip()
    return reference.strip()


def check_answer(
    completion: str,
    reference: str,
    timeout_s: float = 5.0,
    allow_last_number: bool = True,
) -> Verdict:
    """Verdict on a completion's final answer. Feedback never contains the reference."""
    t0 = time.monotonic()
    ex = extract_answer(completion or "")
    details: dict[str, object] = {"method": ex.method}

    def verdict(outcome: Outcome, reason: str, feedback: str, **extra: object) -> Verdict:
        details.update(extra)
        return Verdict(
            verifier="answer",
            verifier_version=VERSION,
            outcome=outcome,
            reason=reason,
            answer=ex.answer,
            feedback=feedback,
            details=details,
            duration_s=time.monotonic() - t0,
        )

    if ex.answer is None or (ex.method == "last_number" and not allow_last_number):
        if ex.method == "last_number":
            details["fallback_disabled"] = True
            ex = Extraction(None, "none")
        return verdict(
            Outcome.FAIL,
            "no_answer",
            "No final answer was found. State the final answer once, as \\boxed{...}.",
        )
    # The vote key, stored so SQL's maj@k groups answers exactly as select.py does.
    details["normalized"] = normalize_answer(ex.answer)
    gold = _reference_answer(reference)
    try:
        d = _decide(ex.answer, gold, timeout_s)
    except Exception as exc:  # defensive: a checker bug is an ERROR, never a pass
        return verdict(Outcome.ERROR, "checker_error", "", error=f"{type(exc).__name__}: {exc}")
    details["decided_by"] = d.status
    if d.equal is True:
        return verdict(Outcome.PASS, "correct", f"The final answer {ex.answer} is correct.")
    if d.equal is False:
        return verdict(
            Outcome.FAIL,
            "wrong_answer",
            f"The final answer {ex.answer} is incorrect. Re-check the reasoning and the "
            "arithmetic, then give the corrected final answer as \\boxed{...}.",
        )
    if d.status == "timeout":
        return verdict(Outcome.TIMEOUT, "timeout", "")
    if d.status == "candidate_unparseable":
        return verdict(
            Outcome.FAIL,
            "unparseable",
            f"The final answer {ex.answer} could not be read as a mathematical expression. "
            "Write it as a single simplified LaTeX expression in \\boxed{...}.",
        )
    if d.status == "reference_unparseable":
        # Not the model's fault: the checker could not read the reference.
        return verdict(Outcome.ERROR, "unparseable", "", which="reference")
    return verdict(Outcome.ERROR, "checker_error", "")

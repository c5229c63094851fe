"""Out-of-process sympy comparison for the answer verifier.

sympy (and latex2sympy underneath math-verify) can hang in C-level code or in pathological
simplifications; signal.alarm cannot interrupt those and does not work off the main thread
at all, while the solve flow calls the checker from worker threads. So the comparison runs
here, in a warm child process that the parent simply SIGKILLs when it overruns.

Protocol (one JSON object per line on stdin/stdout):
  -> {"gold": str, "pred": str}
  <- {"ok": true, "equal": bool | null, "why": str}   (null: one side did not parse)
The process prints {"ready": true} once its imports are done, so the parent does not
charge import time to the first request's timeout.
"""

from __future__ import annotations

import json
import sys
from typing import Any

_CONFIG: list[Any] | None = None


def _config() -> list[Any]:
    """math-verify's default extraction config, but without its unit stripping: that reads
    "2m" as 2 metres and "3g" as 3 grams, accepting 2 for the expression 2m. Units are
    removed by the parent's cleaning instead, only when spelled out after a space or in
    \\text{...}/\\mbox{...}."""
    global _CONFIG
    if _CONFIG is None:
        from latex2sympy2_extended import NormalizationConfig
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        norm = NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
        )
        _CONFIG = [LatexExtractionConfig(normalization_config=norm), ExprExtractionConfig()]
    return _CONFIG


def _compare(gold: str, pred: str) -> tuple[bool | None, str]:
    from math_verify import parse, verify

    # Wrapping in \boxed{} makes math-verify treat the whole string as the answer instead
    # of searching it for something answer-like (which is extraction, done by the parent).
    # parsing_timeout/timeout_seconds=None: math-verify's own limits use signal.alarm; the
    # parent's hard kill is the bound that actually holds.
    g = parse("\\boxed{" + gold + "}", _config(), parsing_timeout=None)
    if not g:
        return None, "reference_unparseable"
    p = parse("\\boxed{" + pred + "}", _config(), parsing_timeout=None)
    if not p:
        return None, "candidate_unparseable"
    return bool(verify(g, p, timeout_seconds=None)), "sympy"


def main() -> None:
    # RLIMIT_AS is set by the pool that starts this process (answer/pool.py).
    import math_verify  # noqa: F401  (warm the import before announcing readiness)

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            equal, why = _compare(req["gold"], req["pred"])
            resp = {"ok": True, "equal": equal, "why": why}
        except Exception as exc:  # a checker crash is reported, never turned into a pass
            resp = {"ok": False, "equal": None, "why": f"{type(exc).__name__}: {exc}"[:500]}
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()

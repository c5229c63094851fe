"""What the Coq session and coqc checkers share: configuration, the version probe, the
reading of Coq's output (errors, goals, axioms) and the reference-statement module."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.formal import Message


class CoqNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class CoqConfig:
    mode: Literal["session", "coqc"] = "session"
    coqtop: str = "coqtop"
    coqc: str = "coqc"
    timeout_s: float = 20.0
    memory_mb: int = 4096  # RLIMIT_AS per Coq process
    workers: int = os.cpu_count() or 1
    recycle_after: int = 200  # checks per warm process before a fresh one
    startup_timeout_s: float = 30.0
    # How long a check waits for a free session before it answers "timeout" (the pool
    # holds `workers` sessions; a check holds one for at most startup + timeout).
    acquire_timeout_s: float = 600.0


def coq_version(coqc: str = "coqc") -> str:
    path = shutil.which(coqc)
    if not path:
        raise CoqNotFound(f"{coqc} not found on PATH (Debian: apt-get install -y coq)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version\s+(\S+)", out)
    return m.group(1) if m else out.strip()


TOPLEVEL_POS = re.compile(r"Toplevel input, characters (\d+)-(\d+):")
TAGGED = re.compile(r"<(infomsg|warning)>.*?</\1>", re.S)
ERROR = re.compile(r"(?m)^Error:")
GOALS = re.compile(r"^\s*(\d+ goals?|No more goals)", re.S)
# Errors that are a consequence of a hole, not a mistake: the proof is incomplete.
HOLE_ERRORS = ("Attempt to save a proof with given up goals", "There are pending proofs")


def header_crash_detail(errors: list[Message]) -> str:
    """A header (or the statement on it) that does not elaborate, as a crash's detail: the
    environment's failure, not the candidate's, so never a cached `fail` (as in Lean)."""
    first = errors[0].text.removeprefix("[header] ") if errors else ""
    return f"environment: the problem's header does not elaborate here: {' '.join(first.split())[:300]}"


def is_hole_error(text: str) -> bool:
    flat = " ".join(text.split())
    return any(x in flat for x in HOLE_ERRORS)


def parse_axioms(text: str) -> list[str] | None:
    if "Closed under the global context" in text:
        return []
    if "Axioms:" not in text:
        return None
    body = text.split("Axioms:", 1)[1]
    # Each assumption starts at column 0 as "name : type"; continuation lines are indented.
    return [m.group(1) for m in re.finditer(r"(?m)^(\S+) :", body)]


def first_goal(display: str) -> str:
    return re.split(r"\n\s*goal 2 ", display, maxsplit=1)[0].strip()


_ASSERT_BY = re.compile(r"^\s*(?:assert|enough|have)\s*\(\s*([\w']+)\s*:\s*(.*)\)\s*by\s+admit\s*\.\s*$", re.S)


def hole_goal(sentence_code: str, goals_display: str) -> str:
    """The goal a hole has to prove: for `assert (h : T) by admit.` that is T under the
    current hypotheses, not the goal shown before the sentence."""
    goal = first_goal(goals_display)
    m = _ASSERT_BY.match(sentence_code)
    if m and "============================" in goal:
        hyps = goal.split("============================")[0]
        return hyps + "============================\n  " + " ".join(m.group(2).split())
    return goal


def ends_open(source: str) -> bool:
    """coqc mode: does the source stop inside a proof (no Qed/Defined/Admitted/Abort after
    the last Proof or statement)? Then the trailer failing means "unclosed", not "undefined"."""
    try:
        sentences, _ = coq_lex.split_sentences(source)
    except coq_lex.CoqLexError:
        return False
    last = sentences[-1].code.strip() if sentences else ""
    return not re.match(r"(Qed|Defined|Admitted|Abort|Save)\b", last)


def reference_module() -> str:
    """A fresh, unguessable module name for the reference statement.

    Why a module elaborated *before* the proof source: the statement must mean what it
    means on the header alone (a Section Variable or an Open Scope in the source must not
    change it), yet the two types must be compared in *one* state, because Coq prints a
    name relative to the state it prints in (after `Require Import Arith`, `Init.Nat.add`
    no longer prints as `Nat.add`). Printed side by side at the end, equal strings mean
    the same constants. The random name keeps a proof from shadowing or using it.
    """
    return f"ProofflowReference_{secrets.token_hex(6)}"


def reference_sentences(module: str, statement: str) -> list[str]:
    """The sentences that elaborate ``statement`` (admitted) inside ``module``."""
    try:
        stmt = [s.text for s in coq_lex.split_sentences(statement)[0]]
    except coq_lex.CoqLexError:
        stmt = [statement]  # Coq reports the error; the reference is then missing
    return [f"Module {module}.", *(" ".join(s.split()) for s in stmt), "Admitted.", f"End {module}."]

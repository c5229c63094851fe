"""One warm `coqtop -quiet -emacs` on the process-pool primitive.

The header is run once per process and its state number remembered; every check goes
back to that state with `BackTo N` (nothing from a previous proof leaks into the next,
and the header's `Require`s are not paid again), then feeds the source one sentence per
line. One sentence per line means each prompt answers exactly one sentence, so messages
and goals are attributed to the right sentence and "characters a-b" map back to the source.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import Protocol

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.coq.common import (
    ERROR,
    GOALS,
    TAGGED,
    TOPLEVEL_POS,
    CoqConfig,
    first_goal,
    header_crash_detail,
    hole_goal,
    is_hole_error,
    parse_axioms,
    reference_module,
    reference_sentences,
)
from proofflow.verifiers.coq.rules import SYNTAX
from proofflow.verifiers.formal import CheckResult, FormalProblem, Hole, Message, ProcessStats, Status
from proofflow.verifiers.formal.holes import split_holes
from proofflow.verifiers.procs import Child, ChildDied, ChildSpec, ReadTimeout, Rlimits, until

_PROMPT = re.compile(rb"<prompt>(?P<body>.*?)</prompt>", re.S)
_PROMPT_BODY = re.compile(r"^\s*(?P<name>\S+) < (?P<state>\d+) \|(?P<proofs>[^|]*)\| (?P<depth>\d+) <\s*$")


class _Crash(Exception):
    pass


class _Timeout(Exception):
    pass


class CoqSession:
    """One warm coqtop. Not thread-safe on its own: the pool lends it to one thread."""

    def __init__(self, config: CoqConfig, version: str, stats: ProcessStats | None = None) -> None:
        self.config = config
        self.version = version
        self.stats = stats or ProcessStats()
        self.scratch = tempfile.mkdtemp(prefix="proofflow-coq-")
        self.child = Child(
            ChildSpec(
                argv=(shutil.which(config.coqtop) or config.coqtop, "-quiet", "-emacs"),
                # Why RLIMIT_AS: untrusted proofs can allocate without bound (nia on a big
                # goal); the cap turns that into a Coq "Out of memory" error, not a dead host.
                limits=Rlimits(memory_mb=config.memory_mb),
                cwd=self.scratch,
                stderr="stdout",
            )
        )
        self.header: str | None = None
        self._header_state: int | None = None
        self._header_error: list[Message] = []
        self.checks_done = 0

    # -- process handling
    def _spawn(self) -> None:
        self.child.start()
        self.stats.spawns += 1
        self.header, self._header_state = None, None
        self._read_prompt(time.monotonic() + self.config.startup_timeout_s)

    def alive(self) -> bool:
        return self.child.alive()

    def kill(self) -> None:
        """Kill the process (the next check respawns it)."""
        self.child.kill()

    def close(self) -> None:
        self.child.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _read_prompt(self, deadline: float) -> tuple[str, str]:
        """Read up to the next prompt: (output before it, prompt body)."""
        try:
            frame = self.child.read_frame(until(_PROMPT), deadline)
        except ReadTimeout:
            raise _Timeout() from None
        except ChildDied as exc:
            raise _Crash(f"coqtop exited (code {exc.returncode}): {exc.tail.decode('utf-8', 'replace')}") from None
        m = _PROMPT.search(frame)
        assert m is not None  # the framer cut right after a match
        return frame[: m.start()].decode("utf-8", "replace"), m.group("body").decode("utf-8", "replace")

    def _send(self, sentence: str, deadline: float) -> tuple[str, str]:
        # One sentence, one line: newlines become spaces (same byte length, so offsets
        # inside the sentence stay valid).
        line = sentence.replace("\r", " ").replace("\n", " ") + "\n"
        try:
            self.child.send(line.encode("utf-8"))
        except ChildDied as exc:
            raise _Crash(f"coqtop pipe closed: {exc}") from None
        return self._read_prompt(deadline)

    def _errs(self, sentence: str, deadline: float) -> str | None:
        """Send; the error text if Coq answered one."""
        out, _ = self._send(sentence, deadline)
        clean = TAGGED.sub("", out)
        err = ERROR.search(clean)
        return None if err is None else clean[err.start() :].strip()

    # -- header reuse
    def _ensure_header(self, header: str, deadline: float) -> list[Message]:
        if not self.child.alive():
            self._spawn()
        if self.header == header and self._header_state is not None:
            back = self._errs(f"BackTo {self._header_state}.", deadline)
            if back is not None:
                raise _Crash(f"BackTo failed: {back[:300]}")
            return self._header_error
        self._send("Reset Initial.", deadline)
        self.stats.header_loads += 1
        errors: list[Message] = []
        sentences, trailing = coq_lex.split_sentences(header)
        body = ""
        for s in sentences:
            out, body = self._send(s.text, deadline)
            clean = TAGGED.sub("", out)
            err = ERROR.search(clean)
            if err:
                errors.append(Message("error", "[header] " + clean[err.start() :].strip()))
                break
        if trailing:
            errors.append(Message("error", f"[header] unterminated sentence: {trailing[:80]}"))
        m = _PROMPT_BODY.match(body) if body else None
        if m is None:
            _, body = self._send("Check 0.", deadline)  # header was empty: get a state number
            m = _PROMPT_BODY.match(body)
        if m is None:
            raise _Crash(f"unparseable prompt {body!r}")
        self.header, self._header_state, self._header_error = header, int(m.group("state")), errors
        return errors

    # -- one check
    def check(self, problem: FormalProblem, source: str) -> CheckResult:
        t0 = time.monotonic()

        def result(status: Status, **kw: object) -> CheckResult:
            return CheckResult(status, "coq", self.version, duration_s=time.monotonic() - t0, **kw)  # type: ignore[arg-type]

        try:
            sentences, trailing = coq_lex.split_sentences(source)
        except coq_lex.CoqLexError as exc:
            line, col = coq_lex.line_col(source, exc.offset)
            return result("error", messages=[Message("error", f"Syntax error: {exc}", line, col)])
        try:
            # The header (Require of libraries) has its own budget; the proof's timeout
            # starts once the header state is ready, as with Lean's header_timeout_s.
            header_errors = self._ensure_header(problem.header, time.monotonic() + self.config.startup_timeout_s)
            if header_errors:
                return result("crash", messages=list(header_errors), detail=header_crash_detail(header_errors))
            deadline = time.monotonic() + self.config.timeout_s
            self.checks_done += 1
            # The statement elaborated on the header alone, before the source (common.py).
            ref = reference_module()
            ref_ok = True
            for st in reference_sentences(ref, problem.statement):
                if self._errs(st, deadline) is not None and ref_ok:
                    ref_ok = False
            return self._check_source(problem, source, sentences, trailing, ref if ref_ok else None, deadline, result)
        except _Timeout:
            self.kill()
            return result("timeout", detail=f"no answer within {self.config.timeout_s}s; coqtop killed")
        except _Crash as exc:
            self.kill()
            return result("crash", detail=str(exc))

    def _check_source(
        self,
        problem: FormalProblem,
        source: str,
        sentences: list[coq_lex.Sentence],
        trailing: str,
        ref: str | None,
        deadline: float,
        result: _Result,
    ) -> CheckResult:
        messages: list[Message] = []
        holes: list[Hole] = []
        text_holes = split_holes(source, SYNTAX)
        last_goals = ""
        prompt = ""
        failed = False
        hole_stop = False
        for s in sentences:
            out, prompt = self._send(s.text, deadline)
            clean = TAGGED.sub("", out)
            for h in text_holes:
                if s.start <= h.start < s.end:
                    holes.append(Hole(h.line, h.column, hole_goal(s.code, last_goals), h.kind, h.start, h.end))
            err = ERROR.search(clean)
            if err:
                msg = self._message(source, s, clean, err.start())
                if is_hole_error(msg.text):
                    hole_stop = True
                else:
                    messages.append(msg)
                failed = True
                break  # coqc semantics: the first error ends the check
            if GOALS.match(clean):
                last_goals = clean.strip()
        if not failed and trailing:
            line, col = coq_lex.line_col(source, source.rfind(trailing))
            messages.append(Message("error", "Syntax error: '.' expected after the last sentence", line, col))
            failed = True
        # Sync: a sentinel whose answer names a nonce; anything unread before it (a
        # sentence Coq saw as two) is scanned too, so a desync can never hide an error.
        nonce = f"proofflow_sync_{os.getpid()}_{self.checks_done}"
        out, _ = self._send(f"Check {nonce}.", deadline)
        while nonce not in out:
            out, _ = self._read_prompt(deadline)
        if failed or hole_stop:
            return result("error" if messages else "incomplete", messages=messages, holes=holes)
        pm = _PROMPT_BODY.match(prompt)
        open_proofs = pm.group("proofs").strip() if pm else ""
        if open_proofs:
            if not holes:
                line, col = coq_lex.line_col(source, len(source.rstrip()))
                holes.append(Hole(line, col, first_goal(last_goals), "unclosed"))
            self._send("Abort All.", deadline)
            return result("incomplete", messages=[Message("info", f"proof of {open_proofs} not closed")], holes=holes)
        if holes:
            return result("incomplete", holes=holes)
        out, _ = self._send(f"Print Assumptions {problem.name}.", deadline)
        clean = TAGGED.sub("", out)
        if ERROR.search(clean):
            return result(
                "error",
                messages=[
                    Message("error", f"theorem {problem.name} is not defined by the source: {clean.strip()[:300]}")
                ],
            )
        axioms = parse_axioms(clean)
        # The statement text can match while its meaning differs (a Section Variable
        # discharged into the type, an Open Scope before the statement): compare the
        # fully elaborated type with the statement elaborated on the header alone.
        actual = self._printed_type(problem.name, deadline)
        reference = None if ref is None else self._printed_type(f"{ref}.{problem.name}", deadline)
        same = reference is not None and actual is not None and actual == reference
        return result(
            "complete",
            axioms=axioms,
            rejections=[] if same else ["statement_type_mismatch"],
            detail="" if same else f"elaborated type {actual!r} != statement {reference!r}",
        )

    def _printed_type(self, name: str, deadline: float) -> str | None:
        """The type of `name` under Printing All (notations and scopes cannot disguise it)."""
        self._send("Set Printing All.", deadline)
        out, _ = self._send(f"Check {name}.", deadline)
        self._send("Unset Printing All.", deadline)
        clean = " ".join(TAGGED.sub("", out).split())
        if ERROR.search(TAGGED.sub("", out)) or not clean.startswith(name + " : "):
            return None
        return clean[len(name) + 3 :]

    @staticmethod
    def _message(source: str, s: coq_lex.Sentence, clean: str, err_at: int) -> Message:
        text = clean[err_at:].strip()
        pos = TOPLEVEL_POS.search(clean[:err_at])
        if not pos:
            line, col = coq_lex.line_col(source, s.start)
            return Message("error", text, line, col)
        raw = s.text.replace("\n", " ").encode("utf-8")
        a = len(raw[: int(pos.group(1))].decode("utf-8", "ignore"))
        b = len(raw[: int(pos.group(2))].decode("utf-8", "ignore"))
        line, col = coq_lex.line_col(source, s.start + a)
        end_line, end_col = coq_lex.line_col(source, s.start + b)
        return Message("error", text, line, col, end_line, end_col)


class _Result(Protocol):
    """The `result(status, **fields)` closure a check builds its CheckResult with."""

    def __call__(self, status: Status, **kw: object) -> CheckResult: ...

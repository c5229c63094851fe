"""The Coq backend: the formal checker that really runs on these machines (Coq 8.16).

Two ways to run Coq, both here because the bench compares them:

- `session` (default): a pool of warm `coqtop -quiet -emacs` processes. The header is
  run once per process and its state number remembered; every check goes back to that
  state with `BackTo N` (so nothing from a previous proof leaks into the next, and the
  header's `Require`s are not paid again), then feeds the source one sentence per line.
  One sentence per line means each prompt answers exactly one sentence, so messages and
  goals are attributed to the right sentence and "characters a-b" map back to the source.
- `coqc`: one `coqc` process per check on a scratch file (cold start every time).

Both: a per-check wall-clock timeout (the process group is killed; a session respawns on
the next check), RLIMIT_AS per process, a scratch working directory, and no shell: the
untrusted source only ever travels through a pipe or a file.
"""

from __future__ import annotations

import os
import re
import resource
import select
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Literal

from proofflow.verifiers._procs import kill_group
from proofflow.verifiers import _coq_lex
from proofflow.verifiers.formal import (
    AuditPolicy,
    CheckResult,
    FormalProblem,
    Hole,
    Message,
    split_holes,
    static_rejections,
)


class CoqNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class CoqConfig:
    mode: Literal["session", "coqc"] = "session"
    coqtop: str = "coqtop"
    coqc: str = "coqc"
    timeout_s: float = 20.0
    memory_mb: int = 4096          # RLIMIT_AS per Coq process
    workers: int = os.cpu_count() or 1
    recycle_after: int = 200       # checks per warm process before a fresh one
    startup_timeout_s: float = 30.0


def coq_version(coqc: str = "coqc") -> str:
    path = shutil.which(coqc)
    if not path:
        raise CoqNotFound(f"{coqc} not found on PATH (Debian: apt-get install -y coq)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version\s+(\S+)", out)
    return m.group(1) if m else out.strip()


def _limits(memory_mb: int):
    def apply() -> None:
        # Why: untrusted proofs can allocate without bound (nia on a big goal); the cap
        # turns that into a Coq "Out of memory" error instead of an OOM-killed host.
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


_PROMPT = re.compile(rb"<prompt>(?P<body>.*?)</prompt>", re.S)
_PROMPT_BODY = re.compile(r"^\s*(?P<name>\S+) < (?P<state>\d+) \|(?P<proofs>[^|]*)\| (?P<depth>\d+) <\s*$")
_TOPLEVEL_POS = re.compile(r"Toplevel input, characters (\d+)-(\d+):")
_TAGGED = re.compile(r"<(infomsg|warning)>.*?</\1>", re.S)
_ERROR = re.compile(r"(?m)^Error:")
_GOALS = re.compile(r"^\s*(\d+ goals?|No more goals)", re.S)
# Errors that are a consequence of a hole, not a mistake: the proof is incomplete.
_HOLE_ERRORS = ("Attempt to save a proof with given up goals", "There are pending proofs")


class _Crash(Exception):
    pass


class _Timeout(Exception):
    pass


def _parse_axioms(text: str) -> list[str] | None:
    if "Closed under the global context" in text:
        return []
    if "Axioms:" not in text:
        return None
    body = text.split("Axioms:", 1)[1]
    # Each assumption starts at column 0 as "name : type"; continuation lines are indented.
    return [m.group(1) for m in re.finditer(r"(?m)^(\S+) :", body)]


def _first_goal(display: str) -> str:
    return re.split(r"\n\s*goal 2 ", display, maxsplit=1)[0].strip()


_ASSERT_BY = re.compile(r"^\s*(?:assert|enough|have)\s*\(\s*([\w']+)\s*:\s*(.*)\)\s*by\s+admit\s*\.\s*$", re.S)


def _hole_goal(sentence_code: str, goals_display: str) -> str:
    """The goal a hole has to prove: for `assert (h : T) by admit.` that is T under the
    current hypotheses, not the goal shown before the sentence."""
    goal = _first_goal(goals_display)
    m = _ASSERT_BY.match(sentence_code)
    if m and "============================" in goal:
        hyps = goal.split("============================")[0]
        return hyps + "============================\n  " + " ".join(m.group(2).split())
    return goal


class CoqSession:
    """One warm coqtop. Not thread-safe on its own: the pool hands it to one thread."""

    def __init__(self, config: CoqConfig, version: str):
        self.config = config
        self.version = version
        self.proc: subprocess.Popen | None = None
        self.scratch = tempfile.mkdtemp(prefix="proofflow-coq-")
        self._buf = b""
        self._header: str | None = None
        self._header_state: int | None = None
        self._header_error: list[Message] = []
        self.checks_done = 0
        self.spawns = 0
        self.header_loads = 0

    # -- process handling
    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which(self.config.coqtop) or self.config.coqtop, "-quiet", "-emacs"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.scratch, preexec_fn=_limits(self.config.memory_mb), start_new_session=True,
        )
        self.spawns += 1
        self._buf = b""
        self._header = None
        self._header_state = None
        self.checks_done = 0
        self._read_prompt(time.monotonic() + self.config.startup_timeout_s)

    def close(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _read_prompt(self, deadline: float) -> tuple[str, str]:
        """Read up to the next prompt: (output before it, prompt body)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            m = _PROMPT.search(self._buf)
            if m:
                out = self._buf[: m.start()].decode("utf-8", "replace")
                body = m.group("body").decode("utf-8", "replace")
                self._buf = self._buf[m.end():]
                return out, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout()
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise _Crash(f"coqtop exited (code {self.proc.poll()}): {self._buf[-500:].decode('utf-8', 'replace')}")
                self._buf += chunk

    def _send(self, sentence: str, deadline: float) -> tuple[str, str]:
        assert self.proc is not None and self.proc.stdin is not None
        # One sentence, one line: newlines become spaces (same byte length, so offsets
        # inside the sentence stay valid).
        line = sentence.replace("\r", " ").replace("\n", " ") + "\n"
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _Crash(f"coqtop pipe closed: {exc}") from None
        return self._read_prompt(deadline)

    # -- header reuse
    def _ensure_header(self, header: str, deadline: float) -> list[Message]:
        if self.proc is None or self.proc.poll() is not None or self.checks_done >= self.config.recycle_after:
            self.close()
            self._spawn()
        if self._header == header and self._header_state is not None:
            out, _ = self._send(f"BackTo {self._header_state}.", deadline)
            if _ERROR.search(_TAGGED.sub("", out)):
                raise _Crash(f"BackTo failed: {out.strip()[:300]}")
            return self._header_error
        self._send("Reset Initial.", deadline)
        self.header_loads += 1
        errors: list[Message] = []
        sentences, trailing = _coq_lex.split_sentences(header)
        body = ""
        for s in sentences:
            out, body = self._send(s.text, deadline)
            clean = _TAGGED.sub("", out)
            if _ERROR.search(clean):
                errors.append(Message("error", "[header] " + clean[_ERROR.search(clean).start():].strip()))
                break
        if trailing:
            errors.append(Message("error", f"[header] unterminated sentence: {trailing[:80]}"))
        m = _PROMPT_BODY.match(body) if body else None
        if m is None:
            _, body = self._send("Check 0.", deadline)  # header was empty: get a state number
            m = _PROMPT_BODY.match(body)
        if m is None:
            raise _Crash(f"unparseable prompt {body!r}")
        self._header, self._header_state, self._header_error = header, int(m.group("state")), errors
        return errors

    # -- one check
    def check(self, problem: FormalProblem, source: str) -> CheckResult:
        t0 = time.monotonic()
        deadline = t0 + self.config.timeout_s

        def result(status, **kw) -> CheckResult:
            return CheckResult(status=status, backend="coq", version=self.version,
                               duration_s=time.monotonic() - t0, **kw)

        try:
            sentences, trailing = _coq_lex.split_sentences(source)
        except _coq_lex.CoqLexError as exc:
            line, col = _coq_lex.line_col(source, exc.offset)
            return result("error", messages=[Message("error", f"Syntax error: {exc}", line, col)])
        try:
            # The header (Require of libraries) has its own budget; the proof's timeout
            # starts once the header state is ready, as with Lean's header_timeout_s.
            header_errors = self._ensure_header(problem.header, time.monotonic() + self.config.startup_timeout_s)
            if header_errors:
                return result("error", messages=list(header_errors))
            deadline = time.monotonic() + self.config.timeout_s
            self.checks_done += 1
            messages: list[Message] = []
            holes: list[Hole] = []
            text_holes = split_holes(source, "coq")
            last_goals = ""
            prompt = ""
            failed = False
            hole_stop = False
            for s in sentences:
                out, prompt = self._send(s.text, deadline)
                clean = _TAGGED.sub("", out)
                for h in text_holes:
                    if s.start <= h.start < s.end:
                        line, col = h.line, h.column
                        holes.append(Hole(line, col, _hole_goal(s.code, last_goals), h.kind, h.start, h.end))
                err = _ERROR.search(clean)
                if err:
                    msg = self._message(source, s, clean, err.start())
                    if any(x in " ".join(msg.text.split()) for x in _HOLE_ERRORS):
                        hole_stop = True
                    else:
                        messages.append(msg)
                    failed = True
                    break  # coqc semantics: the first error ends the check
                if _GOALS.match(clean):
                    last_goals = clean.strip()
            if not failed and trailing:
                off = source.rfind(trailing)
                line, col = _coq_lex.line_col(source, off)
                messages.append(Message("error", "Syntax error: '.' expected after the last sentence", line, col))
                failed = True
            # Sync: a sentinel whose answer names a nonce; anything unread before it (a
            # sentence Coq saw as two) is scanned too, so a desync can never hide an error.
            nonce = f"proofflow_sync_{os.getpid()}_{self.checks_done}"
            out, prompt2 = self._send(f"Check {nonce}.", deadline)
            while nonce not in out:
                out, prompt2 = self._read_prompt(deadline)
            if failed or hole_stop:
                status = "error" if messages else "incomplete"
                return result(status, messages=messages, holes=holes)
            pm = _PROMPT_BODY.match(prompt)
            open_proofs = pm.group("proofs").strip() if pm else ""
            if open_proofs:
                if not holes:
                    line, col = _coq_lex.line_col(source, len(source.rstrip()))
                    holes.append(Hole(line, col, _first_goal(last_goals), "unclosed"))
                self._send("Abort All.", deadline)
                return result("incomplete", messages=[Message("info", f"proof of {open_proofs} not closed")], holes=holes)
            if holes:
                return result("incomplete", holes=holes)
            out, _ = self._send(f"Print Assumptions {problem.name}.", deadline)
            clean = _TAGGED.sub("", out)
            if _ERROR.search(clean):
                return result("error", messages=[Message("error", f"theorem {problem.name} is not defined by the source: {clean.strip()[:300]}")])
            axioms = _parse_axioms(clean)
            # The statement text can match while its meaning differs (a Section Variable
            # discharged into the type, an Open Scope before the statement): compare the
            # fully elaborated type with the statement elaborated in the bare header state.
            actual = self._printed_type(problem.name, deadline)
            self._send(f"BackTo {self._header_state}.", deadline)
            self._send("Set Printing All.", deadline)
            reference = None
            for st in _coq_lex.split_sentences(problem.statement)[0]:
                out, _ = self._send(st.text, deadline)
                if _ERROR.search(_TAGGED.sub("", out)):
                    break
            else:
                self._send("Admitted.", deadline)
                reference = self._printed_type(problem.name, deadline)
            rejections = [] if reference is not None and actual == reference else ["statement_type_mismatch"]
            return result("complete", axioms=axioms, rejections=rejections,
                          detail="" if not rejections else f"elaborated type {actual!r} != statement {reference!r}")
        except _Timeout:
            self.close()
            return result("timeout", detail=f"no answer within {self.config.timeout_s}s; coqtop killed")
        except _Crash as exc:
            self.close()
            return result("crash", detail=str(exc))

    def _printed_type(self, name: str, deadline: float) -> str | None:
        """`Check name.` under Printing All (notations and scopes cannot disguise it)."""
        self._send("Set Printing All.", deadline)
        out, _ = self._send(f"Check {name}.", deadline)
        self._send("Unset Printing All.", deadline)
        clean = _TAGGED.sub("", out)
        return None if _ERROR.search(clean) else " ".join(clean.split())

    @staticmethod
    def _message(source: str, s: _coq_lex.Sentence, clean: str, err_at: int) -> Message:
        text = clean[err_at:].strip()
        pos = _TOPLEVEL_POS.search(clean[:err_at])
        if not pos:
            line, col = _coq_lex.line_col(source, s.start)
            return Message("error", text, line, col)
        raw = s.text.replace("\n", " ").encode("utf-8")
        a = len(raw[: int(pos.group(1))].decode("utf-8", "ignore"))
        b = len(raw[: int(pos.group(2))].decode("utf-8", "ignore"))
        line, col = _coq_lex.line_col(source, s.start + a)
        end_line, end_col = _coq_lex.line_col(source, s.start + b)
        return Message("error", text, line, col, end_line, end_col)


def _ends_open(source: str) -> bool:
    """coqc mode: does the source stop inside a proof (no Qed/Defined/Admitted/Abort after
    the last Proof or statement)? Then the trailer failing means "unclosed", not "undefined"."""
    try:
        sentences, _ = _coq_lex.split_sentences(source)
    except _coq_lex.CoqLexError:
        return False
    last = sentences[-1].code.strip() if sentences else ""
    return not re.match(r"(Qed|Defined|Admitted|Abort|Save)\b", last)


_COQC_POS = re.compile(r'File "[^"]*", line (\d+), characters (\d+)-(\d+):\n(.*?)(?=\nFile "|\Z)', re.S)


class CoqChecker:
    """FormalChecker for Coq: a thread-safe pool of warm sessions, or one coqc per check."""

    name = "coq"

    def __init__(self, config: CoqConfig | None = None):
        self.config = config or CoqConfig()
        self.version = coq_version(self.config.coqc)
        self._sessions: list[CoqSession] = []
        if self.config.mode == "session":
            self._sessions = [CoqSession(self.config, self.version) for _ in range(max(1, self.config.workers))]
        self._idle = list(self._sessions)
        self._cond = threading.Condition()

    def __enter__(self) -> CoqChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for s in self._sessions:
            s.destroy()

    @property
    def stats(self) -> dict[str, int]:
        return {"spawns": sum(s.spawns for s in self._sessions),
                "header_loads": sum(s.header_loads for s in self._sessions)}

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult:
        # Commands that would break the session's isolation or protocol (Reset, BackTo,
        # Load, Quit, Cd, Redirect, Declare ML Module ...) are refused before Coq sees them.
        unsafe = [r for r in static_rejections(problem, proof_source, AuditPolicy.for_backend("coq"))
                  if r == "session_command"]
        if unsafe:
            return CheckResult("rejected", "coq", self.version, rejections=unsafe)
        if self.config.mode == "coqc":
            return self._check_coqc(problem, proof_source)
        session = self._acquire(problem.header)
        try:
            return session.check(problem, proof_source)
        finally:
            with self._cond:
                self._idle.append(session)
                self._cond.notify()

    def _acquire(self, header: str) -> CoqSession:
        """An idle session, preferring one whose header is already loaded (BackTo is
        ~free; a different header costs Reset Initial + its Requires)."""
        with self._cond:
            while not self._idle:
                self._cond.wait()
            for i, s in enumerate(self._idle):
                if s._header == header and s.proc is not None:
                    return self._idle.pop(i)
            return self._idle.pop(0)

    def _check_coqc(self, problem: FormalProblem, source: str) -> CheckResult:
        t0 = time.monotonic()
        scratch = tempfile.mkdtemp(prefix="proofflow-coqc-")
        header = problem.header.rstrip("\n") + "\n"
        offset_lines = header.count("\n")
        path = os.path.join(scratch, "proofflow_check.v")
        # Reference type of the statement, elaborated in the bare header state inside a
        # module (so its name does not clash); compared with the proof's own theorem.
        ref = (f"Module ProofflowReference.\nSet Printing All.\n{' '.join(problem.statement.split())}\nAdmitted.\n"
               f"Check {problem.name}.\nUnset Printing All.\nEnd ProofflowReference.\n")
        header = header + ref
        offset_lines = header.count("\n")
        trailer = f"\nPrint Assumptions {problem.name}.\nSet Printing All.\nCheck {problem.name}.\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(header + source + trailer)
        src_lines = source.count("\n") + 1

        def result(status, **kw) -> CheckResult:
            return CheckResult(status=status, backend="coq", version=self.version,
                               duration_s=time.monotonic() - t0, **kw)
        try:
            proc = subprocess.Popen([shutil.which(self.config.coqc) or self.config.coqc, "-q", "proofflow_check.v"],
                                    cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    preexec_fn=_limits(self.config.memory_mb), start_new_session=True)
            try:
                out_b, _ = proc.communicate(timeout=self.config.timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                return result("timeout", detail=f"coqc killed after {self.config.timeout_s}s")
            out = out_b.decode("utf-8", "replace")
            holes = split_holes(source, "coq")
            if proc.returncode < 0:
                return result("crash", detail=f"coqc killed by signal {-proc.returncode}")
            if proc.returncode == 0:
                checks = [" ".join(c.split()) for c in re.findall(rf"(?ms)^{re.escape(problem.name)}\n\s+: .*?(?=^\S|\Z)", out)]
                rejections = [] if len(checks) == 2 and checks[0] == checks[1] else ["statement_type_mismatch"]
                return result("incomplete" if holes else "complete", holes=holes, axioms=_parse_axioms(out),
                              rejections=rejections if not holes else [])
            messages = []
            hole_stop = False
            for m in _COQC_POS.finditer(out):
                line = int(m.group(1)) - offset_lines
                text = m.group(4).strip()
                if any(x in " ".join(text.split()) for x in _HOLE_ERRORS):
                    hole_stop = True
                    continue
                if line > src_lines:  # the Print Assumptions trailer: theorem not defined
                    if _ends_open(source):
                        hole_stop = True
                        holes = holes or [Hole(*_coq_lex.line_col(source, len(source.rstrip())), "", "unclosed")]
                        continue
                    messages.append(Message("error", f"theorem {problem.name} is not defined by the source: {text[:300]}"))
                    continue
                if line < 1:
                    messages.append(Message("error", "[header] " + text))
                    continue
                raw = (header + source).split("\n")[int(m.group(1)) - 1].encode("utf-8")
                a = len(raw[: int(m.group(2))].decode("utf-8", "ignore"))
                b = len(raw[: int(m.group(3))].decode("utf-8", "ignore"))
                messages.append(Message("error", text, line, a, line, b))
            if not messages and not hole_stop:
                messages.append(Message("error", out.strip()[-500:] or f"coqc exit {proc.returncode}"))
            return result("error" if messages else "incomplete", messages=messages, holes=holes)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

"""The `program` Lean backend: proofflow's checker program (Checker.lean) in a pool of warm
`lean --run` processes, and the mapping of its facts to the audit's rejection reasons.

Why a program of our own instead of the REPL: it runs on any Lean that has the `Lean`
package (`lean --run` here, `lake env lean --run` inside a Mathlib project), with no
binary to build, and the audit happens inside Lean on the elaborated environment: the
theorem's name and elaborated type against the statement elaborated on the header alone,
the axioms it reaches, `implemented_by` / `extern`, search tactics and `debug.skipKernelTC`
in the parsed syntax, and a kernel replay of what the candidate added (docs/formal.md).

A process imports the header once (its first request) and then answers one JSON line
per request on stdout. Requests go in as files, `<request dir>/<n>.json` (written then
renamed, so complete when seen), which the program polls for: under the wasm build a live
pipe to Lean's stdin loses bytes (node's stdin handling takes them; Lean's read(0) then gets
EAGAIN forever), a regular file does not; a native Lean reads them the same way. Each answer is
one JSON line on stdout; every request starts again from the header's state, so nothing a candidate
declares reaches the next one; a candidate that may have run code of its own in the process
(its macros, `#eval`, `native_decide`, ...: the program's `runs_code` fact) is answered and
then the process ends (`recycle`), so no later check runs where it ran. A check prefers a
process that already has its header; a process with another header is restarted with this
one. A check whose process dies (or answers an exception) after earlier checks is checked
again on a fresh process; only a crash on a fresh process is the candidate's own verdict.
Timeout: the process group is killed and the pool replaces it (paying the start-up again);
RLIMIT_AS caps each process; a process is recycled after `recycle_after` checks. A header
the environment cannot elaborate is never a verdict on a candidate: it is a `crash` (not
cached, never a `fail`), and `check_header` lets a run find out before it starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proofflow.verifiers.formal import CheckResult, FormalProblem, Hole, Message, Status
from proofflow.verifiers.procs import Child, ChildDied, ChildSpec, NoWorkerFree, Pool, ReadTimeout, Rlimits, lines

PROGRAM = Path(__file__).with_name("Checker.lean")
# Axioms whose presence means the proof trusts the compiler (native_decide and friends).
_COMPILER_AXIOMS = {"Lean.ofReduceBool", "Lean.ofReduceNat", "Lean.trustCompiler"}
_PRIVATE = re.compile(r"^_private\.(?:[\w.]+\.)?\d+\.")
_SERIAL = itertools.count()  # request directories of this Python process
# What may make the program recycle its process (it decides; this only orders a batch so
# that such candidates come last and the clean ones share one process).
_MAY_RUN_CODE = re.compile(r"\b(?:macro|macro_rules|syntax|elab|elab_rules|notation|infix[lr]?|prefix|postfix|"
                           r"initialize|builtin_initialize|declare_syntax_cat|run_cmd|run_tac|run_elab|run_meta|"
                           r"native_decide|native|by_elab|attribute|deriving|register_\w+)\b|#eval|@\[")


@dataclass(frozen=True)
class ProgramConfig:
    # `("lean",)` for a toolchain on PATH; `("lake", "env", "lean")` with `project_dir`
    # set to a Lean project (e.g. with Mathlib) so its packages are importable.
    lean_command: tuple[str, ...] = ("lean",)
    project_dir: str | None = None
    timeout_s: float = 60.0               # per check, after the header is loaded
    start_timeout_s: float = 900.0        # start-up + header import (wasm: ~1-2 min; Mathlib: minutes cold)
    memory_mb: int = 8192                 # per process (0: none); see memory_limits()
    workers: int = os.cpu_count() or 1
    recycle_after: int = 500              # checks per process before a fresh one
    version: str | None = None            # None: `lean --version` (wasm: its known version)
    env: dict[str, str] = field(default_factory=dict)
    # None: the program decides (trusted-leaf axiom walk on the wasm build, full elsewhere).
    trust_imports: bool | None = None
    workdir: str | None = None            # where the program file is copied (must be visible to Lean)
    # One process per check (run_batch) instead of the warm pool: pays the start-up
    # (wasm: 30-75 s) at every check; for debugging the pool only.
    per_check_process: bool = False
    # The unofficial wasm build (install.py), which caps memory its own way; None: told by
    # the command (the installer puts it under a `lean-wasm` directory).
    wasm: bool | None = None

    @property
    def is_wasm(self) -> bool:
        return self.wasm if self.wasm is not None else is_wasm_command(self.lean_command)


def is_wasm_command(command: tuple[str, ...] | list[str]) -> bool:
    """Whether `command` runs the wasm build that install.py installs."""
    return "lean-wasm" in " ".join(command)


def crash_reasons(last_words: str) -> list[str]:
    """The rejection reason a dead checker process's last words (its stderr) give:
    `memory_limit` when Lean says an allocation failed ("INTERNAL PANIC: out of memory",
    natively under RLIMIT_AS, on wasm at the heap's maximum); else none (`checker_crash`)."""
    return ["memory_limit"] if "out of memory" in last_words.lower() else []


WASM_MAX_MEMORY_MB = 2048                 # the wasm build's heap maximum (32768 pages of 64 KiB)


def memory_limits(config: ProgramConfig) -> tuple[Rlimits, dict[str, str]]:
    """The rlimits and environment a checker process runs under. A native Lean gets
    RLIMIT_AS. The wasm build gets LEAN_WASM_MEMORY_MB instead (install.py, patch 6: the
    wasm heap's maximum), because Node reserves ~12 GB of address space for a 2 GB wasm
    heap: an address-space limit would stop it from starting rather than cap Lean."""
    env = {**os.environ, **config.env}
    if not config.is_wasm:
        return Rlimits(memory_mb=config.memory_mb or None), env
    if config.memory_mb:
        env["LEAN_WASM_MEMORY_MB"] = str(min(config.memory_mb, WASM_MAX_MEMORY_MB))
    return Rlimits(), env


def may_run_code(source: str) -> bool:
    """Whether the program may recycle its process after `source` (a guess for ordering
    a batch only; the program's `runs_code` fact decides)."""
    return _MAY_RUN_CODE.search(source) is not None


def header_crash_detail(errors: list[dict[str, Any]]) -> str:
    """A header that does not elaborate, as a crash's detail: the environment's failure,
    not the candidate's."""
    first = errors[0].get("text", "") if errors else ""
    return f"environment: the problem's header does not elaborate here: {first}"


def program_text() -> str:
    return PROGRAM.read_text(encoding="utf-8")


def program_file(workdir: str | None = None) -> Path:
    """Checker.lean copied under /tmp (the wasm Lean's file system only sees /tmp and
    /home), named by its content hash so concurrent pools never rewrite a file in use."""
    text = program_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    base = Path(workdir or f"/tmp/proofflow-lean-{os.getuid()}")
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"Checker_{digest}.lean"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


def program_version(config: ProgramConfig) -> str:
    """Lean's version plus the checker program's hash: the verdict cache key changes
    when either does."""
    digest = hashlib.sha256(program_text().encode()).hexdigest()[:8]
    if config.version:
        return f"{config.version} checker-{digest}"
    try:
        out = subprocess.run([*config.lean_command, "--version"], cwd=config.project_dir, capture_output=True,
                             text=True, timeout=300, env={**os.environ, **config.env}).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    m = re.search(r"version (\S+?),?\s", out)
    ver = m.group(1) if m else "unknown"
    if "emscripten" in out:
        ver += "+wasm"
    return f"{ver} checker-{digest}"


class CheckerStartError(RuntimeError):
    pass


class LeanProgram:
    """One `lean --run Checker.lean` process with one header loaded. Lent to one thread."""

    def __init__(self, config: ProgramConfig, path: Path):
        self.config = config
        self.path = path
        cwd = config.project_dir or str(path.parent)
        # Under the program's directory: the wasm Lean only sees /tmp and /home.
        self.request_dir = path.parent / f"requests-{os.getpid()}-{next(_SERIAL)}"
        self.sent = 0
        argv = (*config.lean_command, "--run", str(path), str(self.request_dir))
        limits, env = memory_limits(config)
        # stderr kept: when a process dies, its last words (e.g. out of memory) go in the verdict.
        # die_with_host: the program polls its request directory and would never notice a
        # SIGKILLed host (a killed `proofflow prove` left 2.6 GB Lean processes for good).
        self.child = Child(ChildSpec(argv=argv, limits=limits, cwd=cwd, env=env, stderr="keep",
                                     die_with_host=True))
        self.header: str | None = None
        self.header_errors: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.starts = 0
        self.start_s = 0.0

    def send(self, request: dict[str, Any]) -> None:
        """The next request as the file the program waits for (renamed into place whole)."""
        target = self.request_dir / f"{self.sent}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(request, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(target)
        self.sent += 1

    def start(self, header: str) -> None:
        t0 = time.monotonic()
        # A fresh process counts from request 0: drop what a killed one left unread.
        shutil.rmtree(self.request_dir, ignore_errors=True)
        self.request_dir.mkdir(parents=True)
        self.sent = 0
        self.child.start()
        self.starts += 1
        self.header = None
        deadline = time.monotonic() + self.config.start_timeout_s
        hello = self.child.read_frame(lines, deadline)
        if b"hello" not in hello:
            raise CheckerStartError(f"checker program did not start: {hello[-500:]!r}")
        self.send({"header": header})
        raw = self.child.read_frame(lines, deadline)
        try:
            info = json.loads(raw)
        except ValueError:
            raise CheckerStartError(f"checker program did not start: {raw[-500:]!r}") from None
        if not info.get("ready"):
            raise CheckerStartError(f"checker program did not start: {info}")
        self.info, self.header = info, header
        self.header_errors = info.get("header_errors", [])
        self.start_s = time.monotonic() - t0

    @property
    def checks_done(self) -> int:
        """Requests sent to this process since it started (0: fresh, only the header)."""
        return max(0, self.sent - 1)

    def ensure(self, header: str) -> None:
        if self.header != header or not self.child.alive():
            self.start(header)

    def ask(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.send(request)
        raw = self.child.read_frame(lines, time.monotonic() + timeout_s)
        try:
            answer: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise ChildDied(f"unparseable checker answer: {raw[:300]!r}") from None
        return answer

    def close(self) -> None:
        self.child.kill()
        self.header = None
        shutil.rmtree(self.request_dir, ignore_errors=True)


def strip_private(name: str) -> str:
    """`_private.0.cheat` (a module's private name) → `cheat`."""
    return _PRIVATE.sub("", name)


def to_result(answer: dict[str, Any], version: str, duration_s: float) -> CheckResult:
    """The program's answer as a CheckResult: messages, holes, status, and the facts as
    rejection reasons of docs/formal.md (the audit adds the text rules and the axiom set)."""
    messages = [Message(severity=m.get("severity", "error"), text=m.get("text", ""), line=m.get("line"),
                        column=m.get("column"), end_line=m.get("end_line"), end_column=m.get("end_column"))
                for m in answer.get("messages", [])]
    holes = [Hole(line=h["line"], column=h["column"], goal=h.get("goal", "").strip("\n"), kind=h.get("kind", "sorry"))
             for h in answer.get("holes", [])]
    facts: dict[str, Any] = answer.get("facts", {})
    status: Status
    if any(m.severity == "error" for m in messages):
        status = "error"
    elif holes or any("declaration uses 'sorry'" in m.text or "declaration uses `sorry`" in m.text for m in messages):
        status = "incomplete"
    else:
        status = "complete"
    rejections = fact_rejections(facts)
    axioms = [strip_private(a) for a in facts["axioms"]] if "axioms" in facts else None
    detail = ""
    if facts.get("type_matches") is False:
        detail = f"elaborated type {facts.get('type')!r} != statement {facts.get('reference')!r}"
    elif str(facts.get("kernel_replay", "")).startswith("failed"):
        detail = str(facts["kernel_replay"])
    return CheckResult(status=status, backend="lean", version=version, messages=messages, holes=holes,
                       axioms=axioms if status == "complete" else None, rejections=rejections,
                       duration_s=duration_s, detail=detail)


def fact_rejections(facts: dict[str, Any]) -> list[str]:
    """Each fact the program reports, as the rejection reason it stands for."""
    out: list[str] = []
    theorem = facts.get("theorem")
    if theorem == "missing":
        out.append("statement_missing")        # not declared under exactly the problem's name
    elif theorem is not None and theorem != "theorem":
        out.append("statement_mismatch")       # a def / axiom / imported constant of that name
    if facts.get("type_matches") is False:
        out.append("statement_type_mismatch")  # local instance, notation, variable, namespace...
    axioms = {strip_private(a) for a in facts.get("axioms", [])}
    if axioms & _COMPILER_AXIOMS:
        out.append("native_decide")
    if facts.get("implemented_by"):
        out.append("implemented_by")
    if facts.get("extern"):
        out.append("extern")
    replay = str(facts.get("kernel_replay", ""))
    # A declaration the elaborator accepted but the kernel does not: it skipped the kernel
    # (native_decide's compiled proof also fails the replay; that has its own reason).
    if "debug.skipKernelTC" in facts.get("options", []) or (replay.startswith("failed") and "native_decide" not in out):
        out.append("skip_kernel_tc")
    if facts.get("search_tactics"):
        out.append("search_tactic_left")
    return out


class LeanProgramChecker:
    """FormalChecker over a pool of checker-program processes (size = config.workers)."""

    name = "lean"

    def __init__(self, config: ProgramConfig):
        self.config = config
        self.version = program_version(config)
        self.path = program_file(config.workdir)
        self.pool: Pool[LeanProgram] = Pool(lambda: LeanProgram(config, self.path), size=max(1, config.workers),
                                            recycle_after=config.recycle_after, name="lean checker")
        self.starts = 0
        self.start_seconds: list[float] = []
        self.rechecks = 0               # checks run again on a fresh process after a crash
        self.recycled_after_code = 0    # processes ended after a candidate that ran code

    def __enter__(self) -> LeanProgramChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    @property
    def stats(self) -> dict[str, Any]:
        return {"starts": self.starts, "start_s": list(self.start_seconds), "recycled": self.pool.recycled,
                "rechecks": self.rechecks, "recycled_after_code": self.recycled_after_code}

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult:
        if self.config.per_check_process:
            return check_batch(self.config, problem, [proof_source], self.version)[0]
        t0 = time.monotonic()
        result, again = self._attempt(problem, proof_source, t0, fresh=False)
        if again:
            # The process died (or threw) after earlier checks: what killed it may be what
            # they left behind, so the candidate is checked once more on a fresh process,
            # and only a crash there is its own.
            self.rechecks += 1
            result, _ = self._attempt(problem, proof_source, t0, fresh=True)
        return result

    def check_header(self, header: str) -> list[str]:
        """Elaborate `header` in a process of the pool (kept warm for the run): the text of
        each error, none when it elaborates."""
        with self.pool.lease(timeout_s=self.config.start_timeout_s + self.config.timeout_s * 4,
                             prefer=lambda w: w.header == header and w.child.alive()) as worker:
            if worker.header != header or not worker.child.alive():
                worker.ensure(header)
                self.starts += 1
                self.start_seconds.append(worker.start_s)
            return [str(e.get("text", "")) for e in worker.header_errors]

    def _attempt(self, problem: FormalProblem, proof_source: str, t0: float,
                 fresh: bool) -> tuple[CheckResult, bool]:
        """One check on one process (`fresh`: one that has checked nothing yet). The bool:
        whether the process crashed after earlier checks (check again on a fresh one)."""
        def result(status: Any, **kw: Any) -> CheckResult:
            return CheckResult(status=status, backend="lean", version=self.version,
                               duration_s=time.monotonic() - t0, **kw)
        try:
            with self.pool.lease(timeout_s=self.config.start_timeout_s + self.config.timeout_s * 4,
                                 prefer=lambda w: w.header == problem.header and w.child.alive()) as worker:
                return self._attempt_on(worker, problem, proof_source, t0, fresh, result)
        except NoWorkerFree as exc:
            # Every process busy: out of time, as for Coq and the REPL (procs.Pool.lease), not a crash.
            return result("timeout", detail=str(exc)), False

    def _attempt_on(self, worker: LeanProgram, problem: FormalProblem, proof_source: str, t0: float,
                    fresh: bool, result: Callable[..., CheckResult]) -> tuple[CheckResult, bool]:
        """`_attempt` on a lent process; one that timed out, died, broke protocol or ran
        code of its own is marked broken, so the lease replaces it."""
        broken = True
        first = True
        try:
            if (worker.header != problem.header or not worker.child.alive()
                    or (fresh and worker.checks_done > 0)):
                worker.start(problem.header)
                self.starts += 1
                self.start_seconds.append(worker.start_s)
            if worker.header_errors:
                # The environment cannot elaborate the header: not a fact about the proof.
                broken = False
                return result("crash", detail=header_crash_detail(worker.header_errors),
                              messages=[Message("error", "[header] " + e.get("text", ""))
                                        for e in worker.header_errors]), False
            first = worker.checks_done == 0
            request: dict[str, Any] = {"id": 0, "source": proof_source, "name": problem.name,
                                       "statement": problem.statement}
            if self.config.trust_imports is not None:
                request["trust_imports"] = self.config.trust_imports
            t1 = time.monotonic()
            answer = worker.ask(request, self.config.timeout_s)
            if "error" in answer:
                return result("crash", detail=f"checker program: {answer['error']}"), not first
            # A candidate that ran code of its own: its process ends here (the program exits).
            broken = bool(answer.get("recycle"))
            if broken:
                self.recycled_after_code += 1
            out = to_result(answer, self.version, time.monotonic() - t1)
            out.duration_s = time.monotonic() - t0
            return out, False
        except ReadTimeout:
            return result("timeout", detail=f"no answer within {self.config.timeout_s}s; process killed"), False
        except ChildDied as exc:
            # Out of memory is the candidate's allocation (its cap is per process): not re-checked.
            reasons = crash_reasons(exc.stderr)
            return result("crash", detail=str(exc), rejections=reasons), not first and not reasons
        except CheckerStartError as exc:
            return result("crash", detail=str(exc)), False
        except OSError as exc:  # the toolchain is gone: the environment's failure, never the candidate's
            return result("crash", detail=f"environment: the checker cannot start: {exc}"), False
        finally:
            if broken:
                self.pool.mark_broken(worker)


def run_batch(config: ProgramConfig, header: str, requests: list[dict[str, Any]],
              path: Path | None = None) -> list[dict[str, Any]]:
    """Checker processes for a batch: header and requests in a file on the process's stdin,
    the answers in request order. Used by `proofflow check` and the audit tests, where every
    source is known up front; the start-up is paid once per process, and a batch needs more
    than one process only when a candidate ends one:
    - a candidate that ran code of its own (`recycle`) ends its process: the rest go to a
      fresh one (candidates that may do so are sent last, so the others share a process);
    - a process that dies (or answers an exception) on a candidate after earlier ones: that
      candidate and the rest are checked again on a fresh process; a crash on a fresh
      process's first candidate is that candidate's answer (`{"error": ...}`), and only its;
    - a batch that runs out of time: the candidate it was on gets `{"error", "timeout"}`.
    A header that does not elaborate gives every request `{"error", "header_errors"}`."""
    prog = path or program_file(config.workdir)
    # Stable: the requests' own order among those that may run code and among the rest.
    pending = sorted(range(len(requests)), key=lambda i: may_run_code(str(requests[i].get("source", ""))))
    answers: dict[int, dict[str, Any]] = {}
    while pending:
        got, ready, fault = _batch_process(config, prog, header, [(i, requests[i]) for i in pending])
        if ready.get("header_errors"):
            errors = list(ready["header_errors"])
            return [{"error": header_crash_detail(errors), "header_errors": errors} for _ in requests]
        # An exception answer after earlier candidates is checked again like a crash.
        for i in pending[1:]:
            if "error" in got.get(i, {}):
                del got[i]
        answers.update(got)
        rest = [i for i in pending if i not in got]
        if not rest:
            break
        if rest[0] == pending[0]:  # the fresh process's first candidate: its own answer
            answers[rest[0]] = got.get(rest[0]) or fault
            rest = rest[1:]
        elif "timeout" in fault:  # ran out of time on rest[0], not a crash to retry
            answers[rest[0]] = fault
            rest = rest[1:]
        pending = rest
    return [answers[i] for i in range(len(requests))]


def _batch_process(config: ProgramConfig, prog: Path, header: str, batch_requests: list[tuple[int, dict[str, Any]]]
                   ) -> tuple[dict[int, dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """One process over `batch_requests` (ids kept): its answers by id, its ready line, and
    what stopped it early (for the first unanswered request)."""
    batch = prog.parent / f"batch-{os.getpid()}-{time.monotonic_ns()}.jsonl"
    lines_out = [json.dumps({"header": header})] + [json.dumps({**r, "id": i}, ensure_ascii=False)
                                                    for i, r in batch_requests]
    batch.write_text("\n".join(lines_out) + "\n", encoding="utf-8")
    limits, env = memory_limits(config)
    argv = limits.wrap([*config.lean_command, "--run", str(prog)])
    timed_out = False
    try:
        with batch.open("rb") as stdin:
            proc = subprocess.run(argv, stdin=stdin, capture_output=True, cwd=config.project_dir or str(prog.parent),
                                  env=env, start_new_session=True,
                                  timeout=config.start_timeout_s + config.timeout_s * max(1, len(batch_requests)))
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, code, timed_out = exc.stdout or b"", exc.stderr or b"", None, True
    finally:
        batch.unlink(missing_ok=True)
    answers: dict[int, dict[str, Any]] = {}
    ready: dict[str, Any] = {}
    for raw in stdout.decode("utf-8", "replace").splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("ready"):
            ready = obj
        elif isinstance(obj.get("id"), int):
            answers[obj["id"]] = obj
    tail = stderr.decode("utf-8", "replace").strip()[-600:]
    if timed_out:
        return answers, ready, {"error": f"no answer within the batch's {config.timeout_s}s per check",
                                "timeout": True}
    return answers, ready, {"error": f"no answer (exit code {code})" + (f": {tail}" if code else "")}


def check_batch(config: ProgramConfig, problem: FormalProblem, sources: list[str],
                version: str | None = None) -> list[CheckResult]:
    """Check many sources against one problem in one checker process."""
    ver = version or program_version(config)
    t0 = time.monotonic()
    reqs: list[dict[str, Any]] = [{"source": s, "name": problem.name, "statement": problem.statement} for s in sources]
    if config.trust_imports is not None:
        for r in reqs:
            r["trust_imports"] = config.trust_imports
    answers = run_batch(config, problem.header, reqs)
    share = (time.monotonic() - t0) / max(1, len(sources))
    out = []
    for a in answers:
        if a.get("timeout"):
            out.append(CheckResult(status="timeout", backend="lean", version=ver, duration_s=share,
                                   detail=f"checker program: {a['error']}"))
        elif "header_errors" in a:  # the environment's failure, not the candidate's (never cached)
            out.append(CheckResult(status="crash", backend="lean", version=ver, duration_s=share, detail=a["error"],
                                   messages=[Message("error", "[header] " + e.get("text", ""))
                                             for e in a["header_errors"]]))
        elif "error" in a:
            out.append(CheckResult(status="crash", backend="lean", version=ver, duration_s=share,
                                   detail=f"checker program: {a['error']}", rejections=crash_reasons(str(a["error"]))))
        else:
            out.append(to_result(a, ver, a.get("time_ms", 0) / 1000))
    return out


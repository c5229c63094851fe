"""The Lean 4 backend (production): a pool of Lean REPL processes, or a Kimina Lean Server.

Written against leanprover-community/repl's JSON protocol: a command is one JSON object
followed by a blank line on stdin, `{"cmd": text}` or `{"cmd": text, "env": N}`; the
answer is one JSON object followed by a blank line: `{"env": N, "messages": [{severity,
pos: {line, column}, endPos, data}], "sorries": [{pos, endPos, goal, proofState}]}`, or
`{"message": "..."}` when the REPL itself refuses a command (unknown env, bad JSON).

Why a pool of warm REPLs: `import Mathlib` costs seconds to minutes. Each REPL runs the
problem header once and keeps its env number; every proof is then a command against that
env (header-keyed reuse, as Kimina does). The REPL has no timeout of its own, so a check
that overruns kills the process group and the next check on that worker respawns it
(paying the import again — the price of a timeout). RLIMIT_AS caps each process; a REPL
is recycled after N checks because every command keeps a new env alive in it. The
processes, deadline reads, kills and the pool are the shared primitive (verifiers/procs/).

No Lean toolchain can be installed on the machines this was written on: this module's
process handling is tested with a protocol stand-in (tests/verifiers/fake_lean_repl.py); real-Lean
tests run where `lake` and a REPL binary are found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proofflow.verifiers.formal import CheckResult, FormalProblem, Hole, Message, ProcessStats, Status
from proofflow.verifiers.procs import Child, ChildDied, ChildSpec, NoWorkerFree, Pool, ReadTimeout, Rlimits, blank_line


@dataclass(frozen=True)
class LeanConfig:
    project_dir: str = "."                 # a Lean project with Mathlib (lakefile, lake-manifest)
    # `lake env <repl>` puts the project's .olean search path in place for the REPL.
    repl_command: tuple[str, ...] = ("lake", "env", ".lake/packages/REPL/.lake/build/bin/repl")
    timeout_s: float = 60.0                # per proof
    header_timeout_s: float = 600.0        # `import Mathlib` on a cold cache is slow
    memory_mb: int = 16384                 # RLIMIT_AS per REPL (Mathlib needs several GB)
    workers: int = os.cpu_count() or 1
    recycle_after: int = 100               # checks per REPL before a fresh process
    acquire_timeout_s: float = 600.0       # wait for a free REPL at most this long (then: timeout)
    version: str | None = None             # None: ask `lake env lean --version` once
    env: dict[str, str] = field(default_factory=dict)  # extra environment variables


def find_lean_toolchain(config: LeanConfig) -> str | None:
    """None when a real REPL can be started with this config, else the reason it cannot."""
    exe = config.repl_command[0]
    if shutil.which(exe) is None and not Path(exe).exists():
        return f"{exe!r} not found on PATH (install elan, then a Lean project with Mathlib)"
    project = Path(config.project_dir)
    if not (project / "lakefile.lean").exists() and not (project / "lakefile.toml").exists():
        return f"{config.project_dir!r} is not a Lean project (no lakefile)"
    repl = config.repl_command[-1]
    if shutil.which(repl) is None and not (Path(config.project_dir) / repl).exists():
        return f"REPL binary {repl!r} not built (run `lake build repl` in the project)"
    return None


def lean_version(config: LeanConfig) -> str:
    if config.version:
        return config.version
    try:
        out = subprocess.run(["lake", "env", "lean", "--version"], cwd=config.project_dir,
                             capture_output=True, text=True, timeout=120).stdout
        m = re.search(r"version (\S+)", out)
        return m.group(1).rstrip(",") if m else out.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


class ReplCrash(Exception):
    """The REPL died, closed its pipe, or answered something that is not a JSON object."""


class ReplTimeout(Exception):
    """No answer before the deadline (the REPL is still running: kill it)."""


_AXIOMS = re.compile(r"depends on axioms:\s*\[(?P<list>[^\]]*)\]", re.S)


def parse_axioms(messages: Sequence[dict[str, Any]]) -> list[str] | None:
    """`#print axioms foo` answers "'foo' depends on axioms: [a, b]" or
    "'foo' does not depend on any axioms"; anything else: unknown (None)."""
    for m in messages:
        data = m.get("data", "")
        if "does not depend on any axioms" in data:
            return []
        hit = _AXIOMS.search(data)
        if hit:
            return [a.strip() for a in hit.group("list").replace("\n", " ").split(",") if a.strip()]
    return None


def to_messages(raw: Sequence[dict[str, Any]], line_offset: int = 0) -> list[Message]:
    out = []
    for m in raw:
        pos, end = m.get("pos") or {}, m.get("endPos") or {}
        line, end_line = pos.get("line"), end.get("line")
        out.append(Message(
            severity=m.get("severity", "error"), text=m.get("data", ""),
            line=line - line_offset if line is not None else None, column=pos.get("column"),
            end_line=end_line - line_offset if end_line is not None else None,
            end_column=end.get("column")))
    return out


def to_holes(raw: Sequence[dict[str, Any]], line_offset: int = 0) -> list[Hole]:
    return [Hole(line=s["pos"]["line"] - line_offset, column=s["pos"]["column"], goal=s.get("goal", ""), kind="sorry")
            for s in raw if s.get("pos")]


def classify(problem: FormalProblem, messages: list[Message], holes: list[Hole]) -> Status:
    if any(m.severity == "error" for m in messages):
        return "error"
    if holes or any("declaration uses 'sorry'" in m.text for m in messages):
        return "incomplete"
    return "complete"


class LeanRepl:
    """One REPL process on the process-pool primitive (verifiers/procs/). Not
    thread-safe on its own: the pool lends it to one thread."""

    def __init__(self, config: LeanConfig, stats: ProcessStats | None = None) -> None:
        self.config = config
        self.stats = stats or ProcessStats()
        self.child = Child(
            ChildSpec(
                argv=tuple(config.repl_command),
                # RLIMIT_AS: an untrusted proof that allocates without bound fails in the
                # REPL, not the host (Rlimits also turns core dumps off).
                limits=Rlimits(memory_mb=config.memory_mb),
                cwd=config.project_dir,
                env={**os.environ, **config.env},
            )
        )
        self.header: str | None = None
        self.header_env: int | None = None
        self.checks_done = 0

    def alive(self) -> bool:
        return self.child.alive()

    def start(self) -> None:
        """(Re)spawn the REPL in its own process group; its header state is gone."""
        self.child.start()
        self.stats.spawns += 1
        self.header, self.header_env = None, None

    def kill(self) -> None:
        """Kill the process group (the next check on this REPL respawns it)."""
        self.child.kill()

    def close(self) -> None:
        self.child.kill()

    def command(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one command, wait for its answer (a JSON object ended by a blank line)."""
        data = (json.dumps(payload, ensure_ascii=False) + "\n\n").encode("utf-8")
        try:
            raw = self.child.request(data, blank_line, time.monotonic() + timeout_s)
        except ReadTimeout:
            raise ReplTimeout() from None
        except ChildDied as exc:
            raise ReplCrash(f"REPL exited (code {exc.returncode}): {exc}") from None
        try:
            answer = json.loads(raw)
        except json.JSONDecodeError:
            raise ReplCrash(f"unparseable REPL answer: {raw[:300]!r}") from None
        if not isinstance(answer, dict):
            raise ReplCrash(f"REPL answer is not a JSON object: {raw[:300]!r}")
        return answer

    def ensure_header(self, header: str) -> list[Message]:
        if not self.alive():
            self.start()
        if self.header == header and self.header_env is not None:
            return []
        answer = self.command({"cmd": header}, self.config.header_timeout_s)
        self.stats.header_loads += 1
        if "env" not in answer:
            raise ReplCrash(f"header refused: {answer}")
        errors = [m for m in to_messages(answer.get("messages", [])) if m.severity == "error"]
        if errors:
            return [Message("error", "[header] " + m.text) for m in errors]
        self.header, self.header_env = header, int(answer["env"])
        return []


class LeanReplChecker:
    """FormalChecker over a pool of LeanRepl processes (size = config.workers).

    A check prefers an idle REPL that already has the problem's header, so a campaign
    over one header pays the import once per worker, not once per proof. The pool
    recycles a REPL (fresh process) after config.recycle_after checks."""

    name = "lean"

    def __init__(self, config: LeanConfig):
        self.config = config
        self.version = lean_version(config)
        self._stats = ProcessStats()
        self._pool: Pool[LeanRepl] = Pool(
            lambda: LeanRepl(config, self._stats),
            max(1, config.workers),
            recycle_after=config.recycle_after,
            name="lean repl",
        )

    def __enter__(self) -> LeanReplChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    @property
    def stats(self) -> dict[str, int]:
        return {"spawns": self._stats.spawns, "header_loads": self._stats.header_loads}

    def _printed_type(self, repl: LeanRepl, name: str, env: int | None, prefix: str = "") -> str | None:
        answer = repl.command({"cmd": prefix + f"set_option pp.all true in\n#check @{name}", "env": env},
                              self.config.timeout_s)
        infos = [m.get("data", "") for m in answer.get("messages", []) if m.get("severity") == "info"]
        return " ".join(infos[-1].split()) if infos else None

    def check_header(self, header: str) -> list[str]:
        """Elaborate `header` in a REPL of the pool (kept for the run): its errors' text."""
        with self._pool.lease(self.config.acquire_timeout_s,
                              prefer=lambda r: r.header == header and r.alive()) as repl:
            return [m.text.removeprefix("[header] ") for m in repl.ensure_header(header)]

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult:
        t0 = time.monotonic()
        # An exception out of the check leaves the REPL's state unknown: the lease replaces it.
        try:
            with self._pool.lease(
                self.config.acquire_timeout_s, prefer=lambda r: r.header == problem.header and r.alive()
            ) as repl:
                return self._check_on(repl, problem, proof_source, t0)
        except NoWorkerFree as exc:  # every REPL busy: out of time (procs.Pool.lease)
            return CheckResult(status="timeout", backend="lean", version=self.version,
                               duration_s=time.monotonic() - t0, detail=str(exc))

    def _check_on(self, repl: LeanRepl, problem: FormalProblem, proof_source: str, t0: float) -> CheckResult:
        def result(status: Status, **kw: Any) -> CheckResult:
            return CheckResult(status=status, backend="lean", version=self.version,
                               duration_s=time.monotonic() - t0, **kw)
        try:
            header_errors = repl.ensure_header(problem.header)
            if header_errors:  # the environment's failure, not the candidate's: never a cached `fail`
                return result("crash", messages=header_errors,
                              detail="environment: the problem's header does not elaborate here: "
                                     + header_errors[0].text.removeprefix("[header] "))
            repl.checks_done += 1
            answer = repl.command({"cmd": proof_source, "env": repl.header_env}, self.config.timeout_s)
            if "env" not in answer:
                repl.kill()  # the REPL refused the command: do not trust its state
                return result("crash", detail=f"REPL refused the command: {answer}")
            messages = to_messages(answer.get("messages", []))
            holes = to_holes(answer.get("sorries", []))
            status = classify(problem, messages, holes)
            axioms = None
            if status == "complete":
                # The axioms of the theorem as the kernel recorded them, in the env the
                # proof just produced.
                ax = repl.command({"cmd": f"#print axioms {problem.name}", "env": answer["env"]}, self.config.timeout_s)
                axioms = parse_axioms(ax.get("messages", []))
                # Same statement text, different meaning (a `variable` bound into the
                # theorem, an `open` changing notation): compare the elaborated types,
                # printed with pp.all, against the statement elaborated on the header alone.
                actual = self._printed_type(repl, problem.name, answer["env"])
                reference = self._printed_type(repl, problem.name, repl.header_env, problem.statement + " sorry\n\n")
                if actual is None or actual != reference:
                    return result(status, messages=messages, holes=holes, axioms=axioms,
                                  rejections=["statement_type_mismatch"],
                                  detail=f"elaborated type {actual!r} != statement {reference!r}")
            return result(status, messages=messages, holes=holes, axioms=axioms)
        except ReplTimeout:
            repl.kill()
            return result("timeout", detail=f"no answer within {self.config.timeout_s}s; REPL killed")
        except ReplCrash as exc:
            repl.kill()
            return result("crash", detail=str(exc))

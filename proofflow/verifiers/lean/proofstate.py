"""Tactic-level interaction with Lean: proof states from ProofState.lean, with an interface
shaped like LeanDojo's `Dojo` (docs/proving.md, "Tactic-level proving").

    states = ProofStates(ProgramConfig(lean_command=...))
    init = states.initial_state(header, "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := by")
    r = states.run_tac(init, "constructor")      # TacticState | LeanError | ProofFinished
    states.tactics(r)                            # ["constructor"]: the path from the hole

LeanDojo's `dojo.run_tac(state, tactic)` ports with renames: `TacticState.pp`/`.id`,
`LeanError.error`, `ProofFinished.tactic_state_id` keep their names.

Runs like the checker (program.py): the same `LeanProgram` process wrapper (requests as
files, header imported once) on the same `procs.Pool` (warm per header, timeout → kill and
respawn, memory cap, recycling). A state's identity is its origin (a source and the index
of one of its `sorry` holes) plus the tactics applied since, so the store here survives a
process being replaced: a state a fresh process does not know is recomputed from its
tactic path (one `start` and one `run_tac` per tactic), which is cheap next to start-up.
The program decides no verdict: a finished tactic script goes through the checker and
its audit like every other proof.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proofflow.verifiers.lean.program import CheckerStartError, LeanProgram, ProgramConfig, crash_reasons
from proofflow.verifiers.procs import ChildDied, NoWorkerFree, Pool, ReadTimeout

PROGRAM = Path(__file__).with_name("ProofState.lean")


@dataclass(frozen=True)
class TacticState:
    """Open goals after a tactic path (LeanDojo's TacticState): `pp` is every goal,
    hypotheses included, separated by blank lines; `id` is stable in this store."""

    pp: str
    id: int
    goals: tuple[str, ...] = ()
    message: str | None = None

    @property
    def num_goals(self) -> int:
        return len(self.goals)


@dataclass(frozen=True)
class LeanError:
    """The tactic failed (`kind` "tactic"), ran out of time ("timeout": the process was
    killed and will be replaced), or the program died ("crash"; "memory_limit" when it
    ran out of its memory cap)."""

    error: str
    kind: str = "tactic"


@dataclass(frozen=True)
class ProofFinished:
    """No goal left and the hole's proof term has no `sorry` (LeanDojo's ProofFinished)."""

    tactic_state_id: int
    message: str | None = None


TacResult = TacticState | LeanError | ProofFinished


@dataclass(frozen=True)
class _Node:
    header: str
    source: str
    hole: int
    path: tuple[str, ...]
    goals: tuple[str, ...]


def proofstate_file(workdir: str | None = None) -> Path:
    """ProofState.lean copied under /tmp (the wasm Lean sees only /tmp and /home), named
    by its content hash so pools of different versions never share a file."""
    text = PROGRAM.read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    base = Path(workdir or f"/tmp/proofflow-lean-{os.getuid()}")
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"ProofState_{digest}.lean"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


def statement_source(statement: str) -> str:
    """`theorem t ... := by` (or `:=`) with one `sorry` hole as its proof."""
    stmt = statement.rstrip()
    if not stmt.endswith("by"):
        stmt = stmt + (" by" if stmt.endswith(":=") else " := by")
    return stmt + "\n  sorry\n"


class _Worker:
    """One proof-state process and the program-side ids of the states it has computed
    (forgotten whenever the process is started again)."""

    def __init__(self, config: ProgramConfig, path: Path):
        self.program = LeanProgram(config, path)
        self.known: dict[tuple[str, str, int, tuple[str, ...]], int] = {}
        self.generation = -1
        self.requests = 0

    @property
    def header(self) -> str | None:
        return self.program.header

    def ensure(self, header: str) -> None:
        self.program.ensure(header)
        if self.generation != self.program.starts:  # a fresh process knows no state
            self.known.clear()
            self.generation = self.program.starts

    def ask(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.requests += 1
        return self.program.ask({"id": self.requests, **request}, timeout_s)

    def close(self) -> None:
        self.program.close()


class _Failed(Exception):
    def __init__(self, result: LeanError):
        super().__init__(result.error)
        self.result = result


@dataclass
class ProofStateStats:
    tactics: int = 0          # run_tac requests answered by a program (replays included)
    replays: int = 0          # of those, recomputing a known state on a fresh process
    timeouts: int = 0
    starts: int = 0           # processes started
    start_s: list[float] = field(default_factory=list)


class ProofStates:
    """The proof-state store and a pool of proof-state programs (size config.workers).
    Thread-safe: each call leases one process."""

    def __init__(self, config: ProgramConfig, heartbeats: int = 200000):
        self.config = config
        self.heartbeats = heartbeats  # Lean's own per-tactic limit (thousands); the wall timeout is config.timeout_s
        self.path = proofstate_file(config.workdir)
        self.pool: Pool[_Worker] = Pool(lambda: _Worker(config, self.path), size=max(1, config.workers),
                                        recycle_after=config.recycle_after, name="lean proof states")
        self._lock = threading.Lock()
        self._nodes: list[_Node] = []
        self._ids: dict[tuple[str, str, int, tuple[str, ...]], int] = {}
        self.stats = ProofStateStats()

    def __enter__(self) -> ProofStates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    # -- the LeanDojo-shaped interface

    def initial_state(self, header: str, statement: str) -> TacticState | LeanError:
        """The goal of `statement := by sorry`."""
        got = self.holes(header, statement_source(statement))
        if isinstance(got, LeanError):
            return got
        if not got:
            return LeanError("the statement gave no goal")
        return got[0]

    def holes(self, header: str, source: str) -> list[TacticState] | LeanError:
        """One state per `sorry` tactic of `source` (e.g. a checked sketch), in order."""
        try:
            with self._worker(header) as w:
                answer = self._start(w, header, source)
        except _Failed as exc:
            return exc.result
        errors = [m.get("text", "") for m in answer.get("messages", []) if m.get("severity") == "error"]
        states = answer.get("states", [])
        if errors and not states:
            return LeanError("; ".join(errors)[:2000])
        out = []
        for hole, st in enumerate(states):
            goals = tuple(st.get("goals", []))
            out.append(self._state(self._node(header, source, hole, (), goals)))
        return out

    def run_tac(self, state: TacticState, tactic: str) -> TacResult:
        """Apply `tactic` to `state`; the state itself is unchanged (expand it again at will)."""
        node = self._nodes[state.id]
        tactic = tactic.strip()
        if not tactic:
            return LeanError("empty tactic")
        try:
            with self._worker(node.header) as w:
                parent_id = self._materialize(w, node)
                answer = self._tac(w, parent_id, tactic)
        except _Failed as exc:
            return exc.result
        if "tactic_error" in answer:
            return LeanError(str(answer["tactic_error"]))
        goals = tuple(answer.get("goals", []))
        child = self._node(node.header, node.source, node.hole, (*node.path, tactic), goals)
        self._remember(w, self._nodes[child], int(answer["state"]))
        if answer.get("proved"):
            return ProofFinished(child)
        return self._state(child)

    def tactics(self, state: TacticState | ProofFinished | int) -> list[str]:
        """The tactics applied from the hole to reach `state`."""
        sid = state if isinstance(state, int) else state.id if isinstance(state, TacticState) else state.tactic_state_id
        return list(self._nodes[sid].path)

    # -- internals

    def _node(self, header: str, source: str, hole: int, path: tuple[str, ...], goals: tuple[str, ...]) -> int:
        key = (header, source, hole, path)
        with self._lock:
            sid = self._ids.get(key)
            if sid is None:
                sid = len(self._nodes)
                self._nodes.append(_Node(header, source, hole, path, goals))
                self._ids[key] = sid
            return sid

    def _state(self, sid: int) -> TacticState:
        goals = self._nodes[sid].goals
        return TacticState(pp="\n\n".join(goals), id=sid, goals=goals)

    @staticmethod
    def _remember(w: _Worker, node: _Node, program_id: int) -> None:
        w.known[(node.header, node.source, node.hole, node.path)] = program_id

    def _worker(self, header: str) -> _Lease:
        return _Lease(self, header)

    def _start(self, w: _Worker, header: str, source: str) -> dict[str, Any]:
        answer = self._ask(w, {"op": "start", "source": source})
        for hole, st in enumerate(answer.get("states", [])):
            w.known[(header, source, hole, ())] = int(st["state"])
        return answer

    def _tac(self, w: _Worker, program_state: int, tactic: str) -> dict[str, Any]:
        answer = self._ask(w, {"op": "run_tac", "state": program_state, "tactic": tactic,
                               "heartbeats": self.heartbeats})
        self.stats.tactics += 1
        return answer

    def _materialize(self, w: _Worker, node: _Node) -> int:
        """The program's id of `node` on this process, recomputed from the tactic path
        when this process has not seen it (a fresh process after a timeout or a recycle)."""
        key = (node.header, node.source, node.hole, node.path)
        if key in w.known:
            return w.known[key]
        if not node.path:
            self._start(w, node.header, node.source)
            if key not in w.known:
                raise _Failed(LeanError(f"hole {node.hole} of the source is gone on a fresh process", "crash"))
            return w.known[key]
        parent = _Node(node.header, node.source, node.hole, node.path[:-1], ())
        parent_id = self._materialize(w, parent)
        self.stats.replays += 1
        answer = self._tac(w, parent_id, node.path[-1])
        if "state" not in answer:
            raise _Failed(LeanError(f"replaying {node.path[-1]!r} failed: {answer.get('tactic_error')}", "crash"))
        w.known[key] = int(answer["state"])
        return w.known[key]

    def _ask(self, w: _Worker, request: dict[str, Any]) -> dict[str, Any]:
        answer = w.ask(request, self.config.timeout_s)
        if "error" in answer:
            raise _Failed(LeanError(f"proof-state program: {answer['error']}", "crash"))
        return answer


class _Lease:
    """A worker with `header` loaded, for one call; a timeout or a death marks it broken
    (the pool kills and replaces it) and becomes a LeanError."""

    def __init__(self, states: ProofStates, header: str):
        self.states, self.header = states, header
        self.w: _Worker | None = None

    def __enter__(self) -> _Worker:
        cfg = self.states.config
        try:
            self.w = self.states.pool.acquire(timeout_s=cfg.start_timeout_s + cfg.timeout_s * 4,
                                              prefer=lambda w: w.header == self.header and w.program.child.alive())
        except NoWorkerFree as exc:
            raise _Failed(LeanError(str(exc), "crash")) from None
        starts = self.w.program.starts
        try:
            self.w.ensure(self.header)
        except (CheckerStartError, ChildDied, ReadTimeout) as exc:
            self.states.pool.release(self.w, broken=True)
            raise _Failed(LeanError(f"the proof-state program did not start: {exc}"[:2000], "crash")) from None
        except BaseException:
            self.states.pool.release(self.w, broken=True)
            raise
        if self.w.program.starts != starts:
            self.states.stats.starts += 1
            self.states.stats.start_s.append(self.w.program.start_s)
        if self.w.program.header_errors:
            self.states.pool.release(self.w)
            errors = "; ".join(e.get("text", "") for e in self.w.program.header_errors)
            raise _Failed(LeanError(f"[header] {errors}", "header"))
        return self.w

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        assert self.w is not None
        broken = exc_type is not None and not issubclass(exc_type, _Failed)
        self.states.pool.release(self.w, broken=broken)
        if isinstance(exc, ReadTimeout):
            self.states.stats.timeouts += 1
            raise _Failed(LeanError(f"no answer within {self.states.config.timeout_s}s; process killed",
                                    "timeout")) from None
        if isinstance(exc, ChildDied):
            kind = "memory_limit" if crash_reasons(exc.stderr) else "crash"
            raise _Failed(LeanError(str(exc)[:2000], kind)) from None
        return None

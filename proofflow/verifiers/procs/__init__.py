"""The one process-pool primitive every verifier runs its child processes on.

Three pieces, each usable alone:

- ``Child``: one child process started with rlimits (``Rlimits``) in its own process
  group, with a byte channel to it (its stdin/stdout pipes, or a socket passed to it).
  ``request``/``read_frame`` write a request and read one *framed* answer before a
  deadline; the wait uses ``poll`` (``select.select`` fails once a descriptor number
  passes 1024, which a long run with many pools and sockets reaches). ``kill`` SIGKILLs
  the whole group, ``start`` (re)spawns.
- framing functions (``Framer``): ``lines`` (one JSON line), ``blank_line`` (a JSON
  object ended by an empty line, the Lean REPL's), ``length_prefixed`` (4-byte big-endian
  length + body) and ``until(regex)`` (Coq's ``<prompt>...</prompt>``).
- ``Pool``: lends workers (anything with ``close()``) one caller at a time, thread-safe.
  ``acquire`` waits at most ``timeout_s`` and raises ``NoWorkerFree`` when none frees up;
  it can prefer a worker (e.g. one whose header is loaded). ``release`` counts the use and
  recycles the worker after ``recycle_after`` uses, or at once when the caller says it is
  broken (timed out, died); a replacement is made by the factory.

Usage (a pool of warm JSON-line workers)::

    from proofflow.verifiers.procs import Child, ChildSpec, Pool, Rlimits, lines

    class Worker:
        def __init__(self) -> None:
            self.child = Child(ChildSpec(argv=("python3", "-I", "worker.py"),
                                         limits=Rlimits(memory_mb=2048)))

        def ask(self, req: dict, timeout_s: float) -> dict:
            self.child.ensure_started()         # respawns a dead child
            deadline = time.monotonic() + timeout_s
            raw = self.child.request(json.dumps(req).encode() + b"\\n", lines, deadline)
            return json.loads(raw)              # ReadTimeout / ChildDied propagate

        def close(self) -> None:
            self.child.kill()

    pool: Pool[Worker] = Pool(Worker, size=4, recycle_after=100, name="answer")
    with pool.lease(timeout_s=30) as w:         # NoWorkerFree after 30 s
        answer = w.ask({"x": 1}, timeout_s=5)   # an exception marks w broken: replaced
    pool.close()

The pool never looks inside a worker; what "ready", "header" or "respawn" mean is the
worker's business (Coq keeps its prompt state, the sandbox its zygote handshake).
"""

from proofflow.verifiers.procs.child import (
    Child,
    ChildDied,
    ChildSpec,
    Framer,
    ProcError,
    ReadTimeout,
    Rlimits,
    blank_line,
    kill_group,
    length_prefixed,
    lines,
    until,
)
from proofflow.verifiers.procs.pool import NoWorkerFree, Pool

__all__ = [
    "Child",
    "ChildDied",
    "ChildSpec",
    "Framer",
    "NoWorkerFree",
    "Pool",
    "ProcError",
    "ReadTimeout",
    "Rlimits",
    "blank_line",
    "kill_group",
    "length_prefixed",
    "lines",
    "until",
]

"""The tools the built-in agent strategies give a model: `run_python` (the sandbox) and
`check` (the formal checker, audited). The model's code and proofs run only there: the
Python sandbox (verifiers/sandbox/: no network, read-only root, limits) and the checker
processes; nothing the model wrote is evaluated here, and a check's outcome comes from
the audit, never from the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from proofflow.agents.run import Executor, ToolOutcome
from proofflow.agents.tools import ToolSpec

RUN_PYTHON = ToolSpec(
    name="run_python",
    description="Run a Python 3 program in a sandbox (no network, no files kept) and return what it printed.",
    arguments={"code": ("string", "the whole program; print what you want to see")},
    fence="python", main_argument="code",
)


def check_spec(backend: str) -> ToolSpec:
    """`check` for a backend: its fenced-block language is the backend's name (```lean, ```coq)."""
    return ToolSpec(
        name="check",
        description=f"Check a {backend.capitalize()} proof of the theorem. Returns the checker's errors with "
                    "their positions, the goal at each remaining hole (sorry), and why the proof is not accepted; "
                    "or that it is complete.",
        arguments={"proof": ("string", "the theorem with its proof (or just the tactic proof)")},
        fence=backend, main_argument="proof",
    )


def python_executor(timeout_s: float) -> Executor:
    """run_python on the process's sandbox (tasks/resources.py)."""

    def run(args: Mapping[str, Any]) -> ToolOutcome:
        from proofflow.tasks import resources

        result = resources.sandbox().run(str(args["code"]), timeout_s=timeout_s)
        parts = []
        if result.stdout:
            parts.append(result.stdout.rstrip("\n"))
        if result.stderr:
            parts.append("stderr:\n" + result.stderr.rstrip("\n")[-1500:])
        if result.reason not in ("", "ok"):
            parts.append(f"[{result.reason}" + (f", exit code {result.exit_code}]" if result.exit_code else "]"))
        output = "\n".join(parts) or "(no output)"
        outcome = "ok" if result.outcome.value == "pass" else result.outcome.value
        return ToolOutcome(output, outcome, {"reason": result.reason, "exit_code": result.exit_code,
                                             "duration_s": result.duration_s})

    return run


CheckFn = Callable[[str], tuple[str, str, dict[str, Any]]]


def check_executor(check: CheckFn) -> Executor:
    """`check` on a function that checks and audits a proof: (outcome, feedback, details)."""

    def run(args: Mapping[str, Any]) -> ToolOutcome:
        outcome, feedback, details = check(str(args["proof"]))
        if outcome == "pass":
            return ToolOutcome("The proof is complete: it checks, with no hole and no disallowed axiom.", "pass",
                               details)
        return ToolOutcome(feedback or f"The proof is not accepted ({outcome}).", outcome, details)

    return run

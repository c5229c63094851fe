"""`proofflow check`: check and audit proof files outside a run, with the same checker and
the same audit rules as `proofflow prove` (docs/formal.md). One warm checker serves every
file, so many candidates for one problem cost one start-up.

Exit status: 0 every file passes, 1 any file is rejected (fail / error / timeout), 2 a
usage error (unknown problem, unreadable file, backend that does not match the problem).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from proofflow.commands.common import console, settings_or_exit

BUNDLED = {"lean-examples": "lean_examples", "coq-examples": "coq_examples"}


def _usage(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def find_problem(spec: str, backend: str | None = None) -> Any:
    """`PROBLEMS.jsonl:ID` (or a bundled set's name, `lean-examples:ID`) → the FormalProblem
    whose id (or theorem name) is ID. `backend` reads plain lines without a `backend` field
    (default lean); a line's own field wins."""
    from proofflow.problems import ProblemFileError, example_path, load_formal_problems

    path, sep, pid = spec.rpartition(":")
    if not sep or not path or not pid:
        raise _usage(f"--problem {spec!r}: expected PROBLEMS.jsonl:ID")
    file = example_path(BUNDLED[path]) if path in BUNDLED else Path(path)
    if not file.exists():
        raise _usage(f"--problem: no such file {str(file)!r}")
    try:
        problems = load_formal_problems(file, backend=backend)
    except ProblemFileError as exc:
        raise _usage(str(exc)) from None
    for p in problems:
        if str(p.metadata.get("id", "")) == pid or p.name == pid:
            return p
    raise _usage(f"--problem: no problem {pid!r} in {file} ({len(problems)} problems)")


def check(
    candidates: list[Path] = typer.Argument(..., help="proof source files (the theorem with its proof, plus helpers)"),
    problem: str = typer.Option(..., "--problem", help="PROBLEMS.jsonl:ID (any formal format; or lean-examples:ID)"),
    backend: str | None = typer.Option(None, help="lean | coq [default: the problem's]"),
    json_out: bool = typer.Option(False, "--json", help="one JSON line per file: file, outcome, reason, reasons"),
    check_timeout: float | None = typer.Option(None, help="seconds per check [default: 20; wasm Lean: 120]"),
    lean_project: str | None = typer.Option(None, help="a Lean project (lake env lean runs the checker there)"),
    config: Path | None = typer.Option(None, help="TOML config file (\\[prove] section)"),
) -> None:
    """Check candidate proof files against one problem; exit 0 when all pass."""
    from proofflow.tasks.checker_settings import make_checker
    from proofflow.verifiers.formal import CheckResult
    from proofflow.verifiers.registry import audit, languages

    if backend is not None and backend not in languages():
        raise _usage(f"--backend {backend!r}: expected {' or '.join(languages())}")
    prob = find_problem(problem, backend)
    if backend is not None and backend != prob.backend:
        raise _usage(f"--backend {backend}: problem {prob.name!r} is a {prob.backend} problem")
    sources: list[tuple[Path, str]] = []
    for c in candidates:
        try:
            sources.append((c, c.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise _usage(f"{c}: cannot read ({exc})") from None
    overrides = {"prove.backend": prob.backend, "prove.workers": 1, "prove.check_timeout_s": check_timeout,
                 "prove.lean_project_dir": lean_project}
    settings = settings_or_exit(config, {k: v for k, v in overrides.items() if v is not None})
    try:
        checker = make_checker(settings.prove)
    except RuntimeError as exc:
        raise _usage(str(exc)) from None
    failed = False
    from proofflow.verifiers.lean.program import LeanProgramChecker, check_batch
    results: list[CheckResult | None] = [None] * len(sources)
    if isinstance(checker, LeanProgramChecker):
        # One checker process for every file (requests from a file on its stdin).
        results = list(check_batch(checker.config, prob, [s for _, s in sources], checker.version))
    try:
        for (path, source), batched in zip(sources, results):
            result = batched if batched is not None else checker.check(prob, source)
            verdict = audit(prob, source, result)
            passed = verdict.outcome.value == "pass"
            failed = failed or not passed
            reasons = verdict.details.get("reasons", [])
            if json_out:
                print(json.dumps({"file": str(path), "outcome": verdict.outcome.value, "reason": verdict.reason,
                                  "reasons": reasons, "status": result.status, "axioms": result.axioms,
                                  "duration_s": round(result.duration_s, 3)}), flush=True)
            else:
                mark = "[green]PASS[/green]" if passed else f"[red]{verdict.outcome.value.upper()}[/red]"
                console.print(f"{path}: {mark}" + (f" ({', '.join(reasons)})" if reasons else ""))
                if verdict.feedback:
                    console.print(verdict.feedback, markup=False, highlight=False)
    finally:
        close = getattr(checker, "close", None)
        if close is not None:
            close()
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command()(check)

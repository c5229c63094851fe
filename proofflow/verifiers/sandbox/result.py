"""What one sandboxed execution returns (`ExecResult`, under `Limits`) and the two Verdicts
built from it: "the program ran cleanly" (`exec_verdict`, program-of-thought) and
code-based self-verification (`self_verify_verdict`). No processes here: `runner.py`
runs the programs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from proofflow.verifiers.verdict import PYTHON_EXEC, SELF_VERIFY, Outcome, Verdict

VERSION = "python_exec-1.0"
SELF_VERIFY_VERSION = "self_verify-1.0"


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock; RLIMIT_CPU is set to ceil(timeout)+1
    memory_mb: int = 1024  # RLIMIT_AS (address space) of each process
    # Memory of the whole execution, all its processes together: a cgroup's limit where the
    # kernel lets the zygote make one, else RLIMIT_NPROC is cut to budget // memory_mb.
    memory_budget_mb: int = 2048
    file_mb: int = 16  # RLIMIT_FSIZE: largest file the program may write
    max_procs: int = 64  # RLIMIT_NPROC for the execution's uid (processes + threads)
    max_files: int = 64  # RLIMIT_NOFILE
    max_output: int = 1 << 20  # bytes kept per stream; more than this kills the program


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int | None  # None when killed by a signal
    duration_s: float
    outcome: Outcome
    signal: int | None = None
    timed_out: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    # "ok" | "exit_nonzero" | "timeout" | "signal" | "memory_limit" | "output_limit" | "sandbox_error"
    reason: str = ""
    details: dict[str, object] = field(default_factory=dict)


_FEEDBACK_CHARS = 2000


def _tail(text: str, n: int = _FEEDBACK_CHARS) -> str:
    return text if len(text) <= n else "…" + text[-n:]


def exec_verdict(result: ExecResult, verifier: str = PYTHON_EXEC) -> Verdict:
    """Verdict for "the program ran cleanly" (program-of-thought: its stdout is the answer)."""
    if result.outcome is Outcome.PASS:
        feedback = ""
    elif result.outcome is Outcome.TIMEOUT:
        feedback = f"The program did not finish within the time limit ({result.duration_s:.1f} s)."
    elif result.reason == "memory_limit":
        feedback = "The program used more memory than allowed and was killed."
    elif result.reason == "output_limit":
        feedback = "The program printed more output than allowed and was stopped."
    elif result.reason == "signal":
        feedback = f"The program crashed (signal {result.signal})."
    else:
        feedback = "The program failed:\n" + _tail(result.stderr)
    return Verdict(
        verifier=verifier,
        verifier_version=VERSION,
        outcome=result.outcome,
        reason=result.reason,
        answer=result.stdout.strip()[-200:] or None,
        feedback=feedback,
        details=_exec_details(result),
        duration_s=result.duration_s,
    )


def _exec_details(result: ExecResult) -> dict[str, object]:
    return {
        "exit_code": result.exit_code,
        "signal": result.signal,
        "stdout": _tail(result.stdout, 4000),
        "stderr": _tail(result.stderr, 4000),
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        **result.details,
    }


def self_verify_verdict(result: ExecResult, marker: str) -> Verdict:
    """Verdict of code-based self-verification: the model's checking program must print
    ``True`` as its last line *and* run to its end (the harness prints ``marker`` only then).

    PASS only if the marker is present, the exit status is 0 and the last line the program
    printed before the marker is exactly ``True``. A program that exits before its check
    (``sys.exit(0)`` first) has no marker: FAIL "not_checked", never a pass.
    """
    lines = result.stdout.splitlines()
    has_marker = marker in (line.strip() for line in lines)
    user_lines = lines[: max(i for i, line in enumerate(lines) if line.strip() == marker)] if has_marker else lines
    last = next((line.strip() for line in reversed(user_lines) if line.strip()), "")
    # The marker is the harness's, not the program's: what is stored and what the model
    # reads back in a repair prompt is the program's own output (the marker would also
    # tell a later attempt what to print).
    result = replace(result, stdout="\n".join(user_lines).rstrip("\n"))
    details = _exec_details(result)
    details["marker_seen"] = has_marker
    details["last_line"] = last[:200]

    def v(outcome: Outcome, reason: str, feedback: str) -> Verdict:
        return Verdict(
            verifier=SELF_VERIFY,
            verifier_version=SELF_VERIFY_VERSION,
            outcome=outcome,
            reason=reason,
            answer=last[:200] or None,
            feedback=feedback,
            details=details,
            duration_s=result.duration_s,
        )

    if result.outcome is Outcome.TIMEOUT:
        return v(Outcome.TIMEOUT, "timeout", "The verification code did not finish within the time limit.")
    if result.outcome is Outcome.ERROR:
        return v(Outcome.ERROR, result.reason or "error", exec_verdict(result).feedback)
    if result.exit_code != 0:
        return v(Outcome.FAIL, "exception", "The verification code raised an error:\n" + _tail(result.stderr))
    if not has_marker:
        return v(
            Outcome.FAIL, "not_checked", "The verification code exited before reaching its end; the check did not run."
        )
    if last == "True":
        return v(Outcome.PASS, "verified", "")
    if last == "False":
        return v(
            Outcome.FAIL,
            "check_false",
            "The verification code printed False: the answer did not pass its own check.\n"
            + _tail(result.stdout, 1000),
        )
    return v(Outcome.FAIL, "no_boolean", "The verification code must print True or False as its last line.")

"""The coqc checker: one `coqc` process per check on a scratch file (cold start every time)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.coq.common import (
    CoqConfig,
    ends_open,
    header_crash_detail,
    is_hole_error,
    parse_axioms,
    reference_module,
    reference_sentences,
)
from proofflow.verifiers.coq.rules import SYNTAX
from proofflow.verifiers.formal import CheckResult, FormalProblem, Hole, Message, Status
from proofflow.verifiers.formal.holes import split_holes
from proofflow.verifiers.procs import Child, ChildDied, ChildSpec, ReadTimeout, Rlimits

_COQC_POS = re.compile(r'File "[^"]*", line (\d+), characters (\d+)-(\d+):\n(.*?)(?=\nFile "|\Z)', re.S)


def _everything(buf: bytes) -> tuple[bytes, int] | None:
    """Never a frame: coqc's whole output is read until it exits (ChildDied)."""
    return None


def check_coqc(config: CoqConfig, version: str, problem: FormalProblem, source: str) -> CheckResult:
    t0 = time.monotonic()

    def result(status: Status, **kw: object) -> CheckResult:
        return CheckResult(status, "coq", version, duration_s=time.monotonic() - t0, **kw)  # type: ignore[arg-type]

    scratch = tempfile.mkdtemp(prefix="proofflow-coqc-")
    try:
        # The reference statement, elaborated on the header alone inside a module before
        # the source; both types are printed side by side at the end (common.reference_module).
        ref = reference_module()
        header = problem.header.rstrip("\n") + "\n" + "\n".join(reference_sentences(ref, problem.statement)) + "\n"
        offset_lines = header.count("\n")
        trailer = (
            f"\nPrint Assumptions {problem.name}.\nSet Printing All.\nCheck {problem.name}.\n"
            f"Check {ref}.{problem.name}.\n"
        )
        with open(os.path.join(scratch, "proofflow_check.v"), "w", encoding="utf-8") as f:
            f.write(header + source + trailer)
        child = Child(
            ChildSpec(
                argv=(shutil.which(config.coqc) or config.coqc, "-q", "proofflow_check.v"),
                limits=Rlimits(memory_mb=config.memory_mb),
                cwd=scratch,
                stderr="stdout",
            )
        )
        child.start()
        deadline = time.monotonic() + config.timeout_s
        try:
            child.read_frame(_everything, deadline)
        except ReadTimeout:
            return result("timeout", detail=f"coqc killed after {config.timeout_s}s")
        except ChildDied as exc:
            code, out_b = exc.returncode, child.pending()
            if code is None and child.proc is not None:  # output closed a moment before the exit
                try:
                    code = child.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    return result("timeout", detail=f"coqc killed after {config.timeout_s}s")
        finally:
            child.kill()
        out = out_b.decode("utf-8", "replace")
        holes = split_holes(source, SYNTAX)
        if code is None or code < 0:
            return result("crash", detail=f"coqc killed by signal {-(code or 0)}")
        if code == 0:
            checks = [
                " ".join(c.split())
                for c in re.findall(
                    rf"(?ms)^(?:{re.escape(ref)}\.)?{re.escape(problem.name)}\n\s+: (.*?)(?=^\S|\Z)", out
                )
            ]
            same = len(checks) == 2 and checks[0] == checks[1]
            return result(
                "incomplete" if holes else "complete",
                holes=holes,
                axioms=parse_axioms(out),
                rejections=[] if same or holes else ["statement_type_mismatch"],
            )
        return _errors(problem, source, header, offset_lines, out, holes, code, result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def header_errors(config: CoqConfig, header: str) -> list[str]:
    """The header alone through coqc (a missing library, a typo in a Require): the error
    text, or none when it elaborates. Asked once per distinct header before a run pays
    for any sample (tasks/environment_check.py)."""
    scratch = tempfile.mkdtemp(prefix="proofflow-coqc-")
    try:
        with open(os.path.join(scratch, "proofflow_header.v"), "w", encoding="utf-8") as f:
            f.write(header.rstrip("\n") + "\n")
        child = Child(ChildSpec(argv=(shutil.which(config.coqc) or config.coqc, "-q", "proofflow_header.v"),
                                limits=Rlimits(memory_mb=config.memory_mb), cwd=scratch, stderr="stdout"))
        child.start()
        deadline = time.monotonic() + config.timeout_s * 4  # a header may load large libraries
        code: int | None = None
        try:
            child.read_frame(_everything, deadline)
        except ReadTimeout:
            return [f"coqc did not finish the header alone within {config.timeout_s * 4:.0f}s"]
        except ChildDied as exc:
            code, out_b = exc.returncode, child.pending()
            if code is None and child.proc is not None:
                try:
                    code = child.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    return [f"coqc did not finish the header alone within {config.timeout_s * 4:.0f}s"]
        finally:
            child.kill()
        if code == 0:
            return []
        out = " ".join(out_b.decode("utf-8", "replace").split())
        return [out or f"coqc exited with code {code} on the header alone"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _errors(
    problem: FormalProblem,
    source: str,
    header: str,
    offset_lines: int,
    out: str,
    holes: list[Hole],
    code: int,
    result: Callable[..., CheckResult],
) -> CheckResult:
    """A failed coqc run: its errors mapped back to the source, or the hole it stopped at."""
    src_lines = source.count("\n") + 1
    messages: list[Message] = []
    hole_stop = False
    for m in _COQC_POS.finditer(out):
        line = int(m.group(1)) - offset_lines
        text = m.group(4).strip()
        if is_hole_error(text):
            hole_stop = True
            continue
        if line > src_lines:  # the Print Assumptions trailer: theorem not defined
            if ends_open(source):
                hole_stop = True
                holes = holes or [Hole(*coq_lex.line_col(source, len(source.rstrip())), "", "unclosed")]
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
    in_header = [msg for msg in messages if msg.text.startswith("[header] ")]
    if in_header:
        return result("crash", messages=messages, detail=header_crash_detail(in_header))
    if not messages and not hole_stop:
        messages.append(Message("error", out.strip()[-500:] or f"coqc exit {code}"))
    return result("error" if messages else "incomplete", messages=messages, holes=holes)

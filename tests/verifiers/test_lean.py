"""Lean backend. Real-Lean tests run only where a toolchain is configured
(PROOFFLOW_LEAN_PROJECT = a Lean project with Mathlib and a built REPL); the pool's
process handling is tested against tests/verifiers/fake_lean_repl.py, a protocol STAND-IN that
checks nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from proofflow.verifiers.formal import FormalProblem, VerdictCache
from proofflow.verifiers.lean import KiminaChecker, KiminaConfig, LeanConfig, LeanReplChecker, find_lean_toolchain
from proofflow.verifiers.registry import audit, check_cached
from proofflow.verifiers.verdict import Outcome

FAKE = Path(__file__).parent / "fake_lean_repl.py"
P = FormalProblem(name="t", header="import Mathlib\n", backend="lean",
                  statement="theorem t (x : ℝ) (h : 2 * x = 4) : x = 2 := by")
OK = "theorem t (x : ℝ) (h : 2 * x = 4) : x = 2 := by\n  linarith\n"


@pytest.fixture
def fake(tmp_path):
    log = tmp_path / "imports.log"
    cfg = LeanConfig(project_dir=str(tmp_path), repl_command=(sys.executable, str(FAKE)), timeout_s=1.0,
                     header_timeout_s=5, memory_mb=1024, workers=2, recycle_after=3, version="fake-stand-in",
                     env={"FAKE_REPL_LOG": str(log)})
    with LeanReplChecker(cfg) as ch:
        yield ch, log


def imports(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_standin_complete_incomplete_error(fake):
    ch, _ = fake
    r = ch.check(P, OK)
    assert r.status == "complete" and r.axioms == ["propext", "Classical.choice", "Quot.sound"]
    assert audit(P, OK, r).outcome is Outcome.PASS
    src = OK.replace("linarith", "sorry")
    r = ch.check(P, src)
    assert r.status == "incomplete" and r.holes[0].goal.endswith("x = 2")
    assert audit(P, src, r).reason == "hole"
    r = ch.check(P, OK + "-- ERROR")
    assert r.status == "error" and (r.errors[0].line, r.errors[0].column) == (2, 2)


def test_standin_nonstandard_axiom():
    q = FormalProblem(name="cheat_t", header="import Mathlib\n", backend="lean",
                      statement="theorem cheat_t : False := by")
    cfg = LeanConfig(repl_command=(sys.executable, str(FAKE)), workers=1, version="fake-stand-in")
    with LeanReplChecker(cfg) as ch:
        src = "theorem cheat_t : False := by\n  exact cheat\n"
        v = audit(q, src, ch.check(q, src))
    assert v.reason == "nonstandard_axiom"


def test_standin_variable_changes_type(fake):
    ch, _ = fake
    src = "variable (cheat : False)\n" + OK
    r = ch.check(P, src)
    assert r.status == "complete" and r.rejections == ["statement_type_mismatch"]
    assert audit(P, src, r).details["reasons"] == ["variable_declared", "statement_type_mismatch"]


def test_standin_header_reuse_and_recycle(fake):
    ch, log = fake
    for _ in range(3):
        assert ch.check(P, OK).status == "complete"
    # sequential checks land on the REPL that already has the header: 1 import, not 3
    assert imports(log) == 1
    ch.check(P, OK)  # 4th check on that REPL: recycled after 3 → fresh process, new import
    assert imports(log) == 2 and ch.stats["spawns"] == 2


def test_standin_timeout_kills_and_pool_recovers(fake):
    ch, log = fake
    r = ch.check(P, OK + "-- LOOP")
    assert r.status == "timeout" and audit(P, OK, r).outcome is Outcome.TIMEOUT
    assert ch.check(P, OK).status == "complete"


def test_standin_crash_is_error_and_pool_recovers(fake):
    ch, _ = fake
    r = ch.check(P, OK + "-- CRASH")
    assert r.status == "crash" and audit(P, OK, r).outcome is Outcome.ERROR
    assert ch.check(P, OK).status == "complete"


def test_standin_threads_and_cache(fake):
    ch, log = fake
    out = []
    threads = [threading.Thread(target=lambda: out.extend(ch.check(P, OK).status for _ in range(2))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == ["complete"] * 8
    cache = VerdictCache()
    check_cached(ch, P, OK, cache)
    _, v, cached = check_cached(ch, P, OK, cache)
    assert cached and v.passed


def test_kimina_request_and_parse():
    k = KiminaChecker(KiminaConfig(url="http://127.0.0.1:9", version="4.15.0"))
    body, offset = k.request_body(P, OK, "id1")
    assert body["snippet"]["code"].startswith("import Mathlib\n" + OK.rstrip("\n"))
    assert body["snippet"]["code"].rstrip().endswith("#print axioms t") and offset == 1
    answer = {"id": "id1", "time": 1.2, "response": {"env": 0, "messages": [
        {"severity": "info", "pos": {"line": 5, "column": 0}, "endPos": None,
         "data": "'t' depends on axioms: [propext]"}]}}
    r = k.parse(P, OK, answer, offset, 1.2)
    assert r.status == "complete" and r.axioms == ["propext"]
    err = {"id": "id1", "response": {"env": 0, "messages": [
        {"severity": "error", "pos": {"line": 3, "column": 2}, "endPos": {"line": 3, "column": 10},
         "data": "linarith failed"}]}}
    r = k.parse(P, OK, err, offset, 0.1)
    assert r.status == "error" and r.errors[0].line == 2
    timed_out = {"id": "x", "error": "Lean REPL command timed out in 60 seconds"}
    assert k.parse(P, OK, timed_out, offset, 60).status == "timeout"
    # nothing listens on port 9: the checker reports a crash, never a pass
    assert k.check(P, OK).status == "crash"


def _real_config() -> LeanConfig | None:
    project = os.environ.get("PROOFFLOW_LEAN_PROJECT")
    return LeanConfig(project_dir=project, workers=1) if project else None


def test_real_lean_repl():
    cfg = _real_config()
    if cfg is None:
        pytest.skip("no Lean toolchain: set PROOFFLOW_LEAN_PROJECT to a Lean project with Mathlib and a built REPL")
    reason = find_lean_toolchain(cfg)
    if reason:
        pytest.skip(f"no Lean toolchain: {reason}")
    with LeanReplChecker(cfg) as ch:
        assert audit(P, OK, ch.check(P, OK)).outcome is Outcome.PASS
        bad = OK.replace("linarith", "sorry")
        assert audit(P, bad, ch.check(P, bad)).reason == "hole"
        cheat = OK.replace("linarith", "native_decide")
        assert audit(P, cheat, ch.check(P, cheat)).outcome is Outcome.FAIL


def test_kimina_header_check_before_a_run():
    """Kimina's header check, against a RECORDED Kimina server reply (a stand-in: the
    Kimina Lean Server needs a native Lean REPL and Mathlib, which cannot run here)."""
    import httpx

    from proofflow.tasks.environment_check import HeaderEnvironmentError, require_headers
    from proofflow.verifiers.lean.kimina import KiminaUnavailable

    sent: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        code = body["snippet"]["code"]
        messages = [] if "import Mathlib" not in code else [
            {"severity": "error", "pos": {"line": 1, "column": 0}, "endPos": None,
             "data": "unknown module prefix 'Mathlib'\n\nNo directory 'Mathlib' or file 'Mathlib.olean'"}]
        return httpx.Response(200, json={"id": body["snippet"]["id"], "time": 0.1,
                                          "response": {"env": 0, "messages": messages}})

    k = KiminaChecker(KiminaConfig(url="http://kimina.test"), transport=httpx.MockTransport(server))
    assert k.check_header("import Lean") == []
    assert sent[-1]["snippet"]["code"] == "import Lean\n"  # the header alone, no candidate
    errors = k.check_header("import Mathlib\nopen BigOperators")
    assert errors and "Mathlib" in errors[0]
    # The flow's precheck: one line naming the missing module, before any model call.
    with pytest.raises(HeaderEnvironmentError, match=r"cannot elaborate the header of 1 of 2 .*Mathlib"):
        require_headers(k, [P, dataclasses.replace(P, name="u", header="import Lean")], "kimina")
    # A server that cannot be asked is not a header verdict: one line naming the URL.
    down = KiminaChecker(KiminaConfig(url="http://127.0.0.1:9"))
    with pytest.raises(KiminaUnavailable, match=r"Kimina Lean Server at http://127.0.0.1:9 could not check"):
        down.check_header("import Lean")
    failing = KiminaChecker(KiminaConfig(url="http://kimina.test"), transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"id": "header", "error": "Lean REPL crashed"})))
    with pytest.raises(KiminaUnavailable, match="failed on the header: Lean REPL crashed"):
        failing.check_header("import Lean")

"""SIGKILL mid-search through the CLI: `proofflow prove ... --strategy search` as a
subprocess on the REAL wasm Lean (checker and proof-state program), a real DuckDB file,
the real Prefect harness, killed with SIGKILL while it waits for a model answer after
three expansions were stored; the same command then resumes it. Beside it, the same run
(same name, so the same ids) goes clean, uninterrupted, into its own database.

Model answers come from a RECORDED TACTIC POLICY, a stand-in for the model named as such
(proofflow/testing/recorded_server.py): every proof state gets K=2 `have` tactics that add
a distinct hypothesis (so every state and every expansion's prompt is unique) until the
state has three of them; then `omega`, which proves the theorem. Best first on equal
scores (the stand-in sends no log-probabilities) expands breadth first: 1 + 2 + 4
expansions, then the eighth proves.

Asserted: the resume asks no stored expansion again (the requests at the stand-in server),
the stored tree has no duplicates, and the resumed database's rows equal the clean run's
except the `seconds` the search took (wall time) in the `search_end` sample.

Wasm Lean processes: 2 for the killed run, 2 for the resume, 2 for the clean run (started
at the same time as the killed one).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from proofflow.storage.db import StorageError, Store
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = [pytest.mark.lean, pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(1800)]

EXAMPLES = Path(__file__).parents[2] / "proofflow/problems/examples/lean_examples.jsonl"
RUN = "kill-search"
HANGS = 4   # the stand-in holds its 4th request (expansion 4) until the test ends: the kill comes meanwhile
# the policy's hypotheses by name (Lean prints hypotheses of one type together: `s1_0 s2_1 : True`)
_HAVE = re.compile(r"\bs\d+_\d+\b")


@dataclass
class DeepeningPolicy(Recording):
    """RECORDED TACTIC POLICY (stand-in for the model): a state with fewer than three of
    the policy's hypotheses gets `have s<d>_<choice> : True := trivial`; one with three
    gets `omega` first."""

    def completion(self, prompt: str, seed: int, index: int) -> str:
        state = prompt.split("Current proof state:", 1)[-1]
        depth = len(_HAVE.findall(state))
        if depth >= 3 and index == 0:
            return "omega"
        return f"have s{depth + 1}_{index} : True := trivial"


def cli(problems: Path, url: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "proofflow.cli", "prove", str(problems), "--backend", "lean",
            "--strategy", "search", "--base-url", url, "--model", "recorded", "--db", str(db), "--run", RUN,
            "--workers", "1", "--max-tokens", "32", "--check-timeout", "240"]


def environment(prefect_api: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": prefect_api, "PROOFFLOW_PROVE__SEARCH__K": "2",
            "PROOFFLOW_PROVE__SEARCH__MAX_EXPANSIONS": "10", "PROOFFLOW_PROVE__SEARCH__EXPANSIONS_PER_TASK": "1",
            "PROOFFLOW_STORAGE__FLUSH_INTERVAL_S": "0.05", "PROOFFLOW_ENDPOINT__MAX_RETRIES": "0"}


def stored_expansions(db: Path) -> int:
    try:
        return int(Store(db, lock_timeout_s=2).query(
            "SELECT count(DISTINCT parent_id) FROM samples WHERE stage = 'search'")[1][0][0])
    except StorageError:  # not created yet, or the writer holds it this instant
        return 0


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the CLI's process group and the Lean processes it started (each in a
    session of its own, so the group kill does not reach them), by their ids. Their
    watchdog (procs/child.py, die_with_host) would end them too once the CLI is gone;
    killing them here frees their 2.6 GB each at once, before the resume starts its own."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in children:
        with suppress(psutil.NoSuchProcess):
            child.kill()
    proc.wait(timeout=60)


def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    return Store(db).query(sql)[1]


def comparable_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What a run stored, without what differs between any two runs (timestamps,
    latencies, call ids, the endpoint's port), sorted."""
    samples = q(db, """SELECT sample_id, stage, parent_id, idx, round, model, params, seed, prompt, completion,
                              finish_reason, prompt_tokens, completion_tokens FROM samples ORDER BY sample_id""")
    out: dict[str, list[tuple[Any, ...]]] = {
        "samples": [s for s in samples if s[1] != "search_end"],
        "search_end": [(*s[:9], json.dumps({k: v for k, v in json.loads(s[9]).items() if k != "seconds"}))
                       for s in samples if s[1] == "search_end"],
        "search_nodes": q(db, """SELECT node_id, parent_node_id, sample_id, origin, tactic, depth, logprob, score,
                                        status, goals, error, merged_into FROM search_nodes ORDER BY node_id"""),
        "verdicts": q(db, """SELECT sample_id, verifier, verifier_version, outcome, reason, answer, feedback
                             FROM verdicts ORDER BY sample_id, verifier"""),
        "results": q(db, """SELECT problem_id, selection, selected_answer, selected_sample_id, correct, solved,
                                   n_samples, n_passed FROM results ORDER BY problem_id"""),
        "ok_calls": q(db, """SELECT stage, n, seed, prompt_tokens, completion_tokens FROM calls
                             WHERE status = 'ok' ORDER BY seed"""),
    }
    return out


def test_sigkill_mid_search_resumes_without_asking_a_stored_expansion_again(
        prefect_api: str, tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(next(ln for ln in EXAMPLES.read_text().splitlines() if '"linear_two_vars"' in ln) + "\n")
    killed_db, clean_db = tmp_path / "killed.duckdb", tmp_path / "clean.duckdb"
    env = environment(prefect_api)
    hanging = DeepeningPolicy(model="recorded", slow_requests={HANGS: 3600.0})
    with RecordedServer(hanging) as srv, RecordedServer(DeepeningPolicy(model="recorded")) as clean_srv:
        clean = subprocess.Popen(cli(problems, clean_srv.base_url, clean_db), env=env, start_new_session=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        proc = subprocess.Popen(cli(problems, srv.base_url, killed_db), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 1200
            # three expansions stored and the fourth asked (its answer never comes)
            while srv.behaviour.received < HANGS or stored_expansions(killed_db) < HANGS - 1:
                assert proc.poll() is None, "the CLI ended before three expansions were stored"
                assert time.monotonic() < deadline, "three expansions were never stored"
                time.sleep(0.5)
            time.sleep(1.0)  # a few flush intervals: whatever the run stores, it has stored
            assert srv.behaviour.received == HANGS and srv.behaviour.requests == HANGS - 1
        finally:
            kill_tree(proc)
        stored = q(killed_db, "SELECT DISTINCT prompt FROM samples WHERE stage = 'search'")
        assert len(stored) == HANGS - 1
        assert q(killed_db, "SELECT count(*) FROM samples WHERE stage IN ('search_end', 'search_proof')") == [(0,)]
        answered_before = srv.behaviour.requests

        resumed = subprocess.run(cli(problems, srv.base_url, killed_db), env=env, capture_output=True, text=True,
                                 timeout=1200)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        asked_on_resume = srv.behaviour.prompts[answered_before:]
        try:
            clean_out, _ = clean.communicate(timeout=1200)
        finally:
            if clean.poll() is None:
                kill_tree(clean)
        assert clean.returncode == 0, clean_out[-3000:]
        clean_asked = list(clean_srv.behaviour.prompts)

    # The resume asked no stored expansion again, and together with the killed run asked
    # exactly what the clean run asked (expansion 4, answered into the killed process's
    # dead socket never, is asked again: it was never stored).
    stored_prompts = {p for (p,) in stored}
    assert not stored_prompts & set(asked_on_resume)
    assert len(asked_on_resume) == len(set(asked_on_resume)) == len(clean_asked) - len(stored_prompts)
    assert stored_prompts | set(asked_on_resume) == set(clean_asked)
    # The search proved the theorem in both; the tree has no duplicates.
    for db in (clean_db, killed_db):
        assert q(db, "SELECT solved FROM results") == [(True,)], (db.name, q(db, """SELECT s.stage, s.completion,
            v.verifier, v.outcome, v.reason, v.feedback FROM samples s LEFT JOIN verdicts v USING (sample_id)
            WHERE s.stage IN ('search_proof', 'search_end')"""))
    for db in (killed_db, clean_db):
        nodes = q(db, """SELECT count(*), count(DISTINCT node_id), count(DISTINCT (parent_node_id, tactic))
                         FROM search_nodes""")[0]
        assert nodes[0] == nodes[1] == nodes[2] > 1
        samples = q(db, "SELECT count(*), count(DISTINCT (parent_id, idx)) FROM samples WHERE stage = 'search'")[0]
        assert samples[0] == samples[1] == 2 * len(clean_asked)
    # Row for row the same as the clean run's, but for the search's wall time.
    resumed_rows, clean_rows = comparable_rows(killed_db), comparable_rows(clean_db)
    for table, rows in clean_rows.items():
        assert rows, table
        assert resumed_rows[table] == rows, table

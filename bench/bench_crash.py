"""Crash-consistency benchmark: SIGKILL a running `proofflow solve` N times, then finish it,
and compare with a clean run of the same command (issue 12).

Both runs use the same run name in two fresh databases, so their sample ids agree. The
model is the STAND-IN instant server (deterministic completions, a per-request delay so
kills land while requests are in flight), in this process; the CLI runs as a
subprocess in its own process group, reporting to one real temporary Prefect server.
Each attempt is killed at a random moment after its first model request; then the run
is resumed to completion. Prints, against the clean run:

  - rows lost: samples / verdicts / results of the clean run missing (or different) in
    the crashed one;
  - rows duplicated: rows the crashed run has that the clean one does not;
  - model calls beyond the clean run's: stored answered `calls` rows (`ok` / `error`), and
    requests the server answered (the latter includes requests in flight when the process
    died, whose answers nobody received);
  - calls stored as `interrupted` (recorded before they were sent, issue 20.14): each
    request a kill cut off shows as one, so they are at least the requests beyond clean (more
    when a kill fell between a call's record and its send: the server never got those);
  - after each kill: whether `proofflow runs` shows the run `interrupted` (its lease is
    free) and whether the next attempt could start (no "held by" refusal).

Target (issue 12): 0 lost / 0 duplicated / 0 calls beyond over 20 kills.

    python bench/bench_crash.py [--kills 20] [--problems 22] [--samples 8] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

RUN = "crash-bench"

# What must be identical between the clean and the crashed run, per table.
FLUSH_ENV = "PROOFFLOW_STORAGE__FLUSH_INTERVAL_S"

FINGERPRINTS: dict[str, str] = {
    "samples": "SELECT sample_id, stage, round, idx, parent_id, completion FROM samples WHERE run_id = $run",
    "verdicts": "SELECT v.sample_id, v.verifier, v.outcome, v.answer FROM verdicts v "
                "JOIN samples s USING (sample_id) WHERE s.run_id = $run",
    "results": "SELECT problem_id, selected_answer, correct, solved, n_samples, n_passed "
               "FROM results WHERE run_id = $run",
}


def fingerprint(db: Path) -> dict[str, set[tuple[Any, ...]]]:
    from proofflow.keys import run_id_for
    from proofflow.storage.db import Store

    store = Store(db)
    run_id = run_id_for(RUN)
    return {t: set(store.query(sql, {"run": run_id})[1]) for t, sql in FINGERPRINTS.items()}


def stored_calls(db: Path, interrupted: bool = False) -> int:
    """Answered calls (`ok` / `error`) of the run, or those stored as `interrupted`."""
    from proofflow.keys import run_id_for
    from proofflow.storage.db import Store

    which = "=" if interrupted else "<>"
    return int(Store(db).query(f"SELECT count(*) FROM calls WHERE run_id = ? AND status {which} 'interrupted'",
                               [run_id_for(RUN)])[1][0][0])


def run_status(db: Path) -> str:
    from proofflow.storage.db import Store

    runs = [r for r in Store(db).list_runs() if r.name == RUN]
    return runs[0].status if runs else "absent"


def cli(args: argparse.Namespace, problems: Path, db: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "proofflow.cli", "solve", str(problems), "--model", "instant",
            "--base-url", url, "--db", str(db), "--run", RUN, "-n", str(args.samples),
            "-r", str(args.repair_rounds), "--problems-in-flight", str(args.in_flight)]


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_first_request(received: Callable[[], int], before: int, proc: subprocess.Popen[bytes],
                       timeout: float = 300) -> bool:
    """True once the server got a request from this attempt; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if received() > before:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise RuntimeError("no model request within the timeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--problems", type=int, default=22)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repair-rounds", type=int, default=1)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per model request (stand-in)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from proofflow.keys import run_id_for
    from proofflow.problems import example_path
    from proofflow.storage.lease import current_holder
    from proofflow.testing import instant_server
    from proofflow.testing.instant_server import Behaviour, InstantServer

    work = Path(tempfile.mkdtemp(prefix="proofflow-crash-"))
    problems = work / "problems.jsonl"
    lines = [x for x in example_path().read_text().splitlines() if x.strip()][: args.problems]
    problems.write_text("\n".join(lines) + "\n")
    behaviour = Behaviour(delay_s=args.delay)
    log = work / "cli.log"
    print(f"flush interval {os.environ.get(FLUSH_ENV, 'default (0.5 s)')}")
    print(f"work dir {work}; {len(lines)} problems × {args.samples} samples, {args.repair_rounds} repair "
          f"round(s), {args.delay:.2f} s per request (stand-in), {args.kills} kills")

    # Answers the server got onto the wire (a POST's 200 written without a broken pipe):
    # with `received`, this splits the extra requests of a crashed run into those in
    # flight when the process died and those answered but lost before a flush.
    delivered = [0]
    original_send = instant_server._Handler._send

    def counting_send(self: Any, status: int, body: Any, content_type: str = "application/json") -> None:
        original_send(self, status, body, content_type)
        if status == 200 and self.command == "POST" and self.path.rstrip("/") != "/tokenize":
            with behaviour.lock:
                delivered[0] += 1

    instant_server._Handler._send = counting_send  # type: ignore[method-assign]

    with prefect_test_harness(server_startup_timeout=180), InstantServer(behaviour=behaviour) as server:
        env_url = str(PREFECT_API_URL.value())
        os.environ["PREFECT_API_URL"] = env_url
        # A killed client breaks its connections; that is expected here, not worth a traceback.
        server._httpd.handle_error = lambda *a: None  # type: ignore[method-assign]

        def received() -> int:
            with behaviour.lock:
                return behaviour.received

        # The clean run.
        clean_db = work / "clean.duckdb"
        before = received()
        t0 = time.monotonic()
        proc = start(cli(args, problems, clean_db, server.base_url), log)
        wait_first_request(received, before, proc)
        t_first = time.monotonic()
        if proc.wait() != 0:
            sys.exit(f"the clean run failed; see {log}")
        clean_span = time.monotonic() - t_first
        clean_requests = received() - before
        clean = fingerprint(clean_db)
        clean_calls = stored_calls(clean_db)
        print(f"clean run: {time.monotonic() - t0:.1f} s ({clean_span:.1f} s after its first request), "
              f"{clean_requests} requests, {clean_calls} calls stored, "
              + ", ".join(f"{len(v)} {k}" for k, v in clean.items()))

        # The crashed run: kill, resume, kill, ... then let it finish.
        crash_db = work / "crash.duckdb"
        before_all = received()
        delivered_before = delivered[0]
        kills = finished_early = interrupted_shown = refused = 0
        attempts = 0
        while kills < args.kills:
            attempts += 1
            before = received()
            proc = start(cli(args, problems, crash_db, server.base_url), log)
            if not wait_first_request(received, before, proc):
                code = proc.wait()
                if code != 0:
                    refused += 1
                    print(f"  attempt {attempts}: exited {code} before any request; see {log}")
                    if refused > 3:
                        sys.exit("attempts keep failing before any request")
                    continue
                finished_early += 1
                break  # the run is complete: nothing left to kill
            # Random moments spread so that N kills fall within about half of one clean
            # run's work (each attempt gets ~clean_span/2N done before its kill, on
            # average, as nothing it stored is lost), leaving work for every kill.
            time.sleep(rng.uniform(0, clean_span / args.kills))
            if proc.poll() is not None:
                finished_early += 1
                break
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            holder = current_holder(crash_db, run_id_for(RUN))
            status = run_status(crash_db) if crash_db.exists() else "absent"
            interrupted_shown += int(holder is None and status in ("interrupted", "absent"))
        before = received()
        proc = start(cli(args, problems, crash_db, server.base_url), log)
        if proc.wait() != 0:
            sys.exit(f"the final resume failed; see {log}")
        crash_requests = received() - before_all
        crash_delivered = delivered[0] - delivered_before
        crash = fingerprint(crash_db)
        crash_calls = stored_calls(crash_db)
        crash_interrupted = stored_calls(crash_db, interrupted=True)

    lost = {t: len(clean[t] - crash[t]) for t in clean}
    dup = {t: len(crash[t] - clean[t]) for t in clean}
    leftovers = list(Path(tempfile.gettempdir()).glob("proofflow-batch-*.jsonl")) + \
        list(crash_db.with_name(crash_db.name + ".work").glob("batch-*.jsonl"))
    print(f"\n{kills} kills (+{finished_early} attempt(s) that finished before their kill), then a final resume")
    print(f"rows lost:        {sum(lost.values())}  ({', '.join(f'{k} {v}' for k, v in lost.items())})")
    print(f"rows duplicated:  {sum(dup.values())}  ({', '.join(f'{k} {v}' for k, v in dup.items())})")
    print(f"calls beyond clean, stored in `calls`: {crash_calls - clean_calls}  "
          f"({crash_calls} vs {clean_calls})")
    print(f"requests beyond clean, answered by the server: {crash_requests - clean_requests}  "
          f"({crash_requests} vs {clean_requests}; includes requests in flight at each kill)")
    print(f"  of which answered and received, then lost with the process before a flush: "
          f"{crash_delivered - clean_requests}; in flight when it died: {crash_requests - crash_delivered}")
    print(f"calls stored as interrupted (sent, no answer stored): {crash_interrupted}  "
          f"(requests beyond clean: {crash_requests - clean_requests})")
    print(f"after a kill, run shown interrupted with its lease free: {interrupted_shown}/{kills}")
    print(f"leftover batch files: {len(leftovers)}")
    print(f"LOST/DUPLICATED/CALLS-BEYOND: {sum(lost.values())} / {sum(dup.values())} / {crash_calls - clean_calls}")


if __name__ == "__main__":
    main()

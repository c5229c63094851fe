"""Prove-flow bench: the DSP+ path through the real Coq checker, and the verdict-cache
hit rate when another run meets the same proofs.

Model outputs come from the RECORDED-COMPLETION stand-in (proofflow/testing/recorded_server.py)
so the figures measure proofflow and Coq, not a model: every problem gets the same
one-hole sketch (`intros. admit.` — automation must find the tactic), i.e. per problem
one draft, one sketch, up to 8 automation attempts, one assembly.

    python bench/bench_prove.py            # all 23 bundled Coq examples
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SKETCH = "```coq\nProof.\n  intros.\n  admit.\nQed.\n```"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from prefect.testing.utilities import prefect_test_harness

    from proofflow.flows.prove import run_prove
    from proofflow.storage.db import Store
    from proofflow.testing.recorded_server import RecordedServer, Recording

    workdir = Path(tempfile.mkdtemp(prefix="proofflow-bench-prove-"))
    db = workdir / "bench.duckdb"
    with RecordedServer(Recording(answers={"proof sketch": SKETCH}, default="1. Routine.")) as srv, \
            prefect_test_harness(server_startup_timeout=120):
        cfg = {"endpoint.model": "recorded", "endpoint.base_urls": [srv.base_url],
               "storage.db_path": str(db), "prove.strategy": "dsp", "prove.samples": 1, "prove.hole_budget": 0,
               "prove.workers": args.workers, "prove.problems_in_flight": args.in_flight,
               "prove.limit": args.limit}
        t0 = time.perf_counter()
        first = run_prove("coq-examples", "bench-1", overrides=cfg)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = run_prove("coq-examples", "bench-2", overrides=cfg)  # new run, same proofs
        second_s = time.perf_counter() - t0
    store = Store(db)
    _, tried = store.query("""SELECT count(*), count(*) FILTER (WHERE v.outcome = 'pass')
                              FROM samples s JOIN verdicts v USING (sample_id)
                              WHERE s.model = 'automation'
                                AND s.run_id = (SELECT run_id FROM runs WHERE name = 'bench-1')""")
    _, by_tactic = store.query("""SELECT json_extract_string(v.details, '$.tactic') AS tactic, count(*)
                                  FROM verdicts v JOIN runs r USING (run_id)
                                  WHERE r.name = 'bench-1' AND v.verifier = 'coq_hole' AND v.outcome = 'pass'
                                  GROUP BY tactic ORDER BY count(*) DESC""")
    hits = second["cache_hits"]
    lookups = second["cache_hits"] + second["cache_misses"]
    print(f"problems: {first['problems']}, DSP with a one-hole sketch, {args.workers} Coq session(s), "
          f"{args.in_flight} problems in flight")
    print(f"run 1: {first_s:6.2f} s wall, proved {first['solved']}/{first['problems']}, "
          f"checks run {first['checks_run']}, cache hits {first['cache_hits']} (same proof met twice within the run)")
    print(f"       automation attempts {tried[0][0]}, closed {tried[0][1]}; closing tactic: "
          + ", ".join(f"{t} {n}" for t, n in by_tactic))
    print(f"run 2: {second_s:6.2f} s wall, proved {second['solved']}/{second['problems']}, "
          f"checks run {second['checks_run']}, cache hit rate {hits}/{lookups} = {hits / max(lookups, 1):.0%}")
    print(f"database: {db}")


if __name__ == "__main__":
    main()

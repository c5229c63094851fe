"""Agent orchestration overhead: proofflow's `tir` strategy against a bare agent loop.

Both sides talk to the same STAND-IN scripted chat server (a separate process that
answers at once from a fixed TIR script: `--tool-turns` turns each write a ```python
block, then an answer), run every block in the same sandbox (verifiers/sandbox/), and
record every turn and tool run:
  - bare: a plain loop with the openai client, appending JSON lines to a file;
  - proofflow: `solve --strategy tir` (Prefect flow, one task run per step, the DuckDB
    writer, resumable), under a real temporary Prefect server started before timing.
Prints wall time per turn for each, the difference (proofflow's orchestration and
persistence per turn) and the ratio; and the marginal turn (the run less a one-problem
run, over the turns in between), which leaves out proofflow's fixed per-run cost.

    python bench/bench_agent.py [--problems 20] [--episodes 1] [--tool-turns 3] [--in-flight 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SYSTEM = "Solve with Python when it helps; end with \\boxed{}."
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    """Until the stand-in server answers /models (this bench's own copy: bench_pipeline
    is another bench, free to change)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"stand-in server at {url} did not come up")


def problems_file(path: Path, n: int) -> Path:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i}", "problem": f"What is 6 * 7 + {i} - {i}?", "answer": "42"}) + "\n")
    return path


def bare_loop(url: str, model: str, problems: list[dict[str, str]], episodes: int, max_turns: int,
              log: Path) -> tuple[float, int, int]:
    """The baseline: what a researcher's own script does. Returns (wall s, turns, tool runs)."""
    import openai

    from proofflow.verifiers.sandbox import default_sandbox

    client = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    sandbox = default_sandbox()
    turns = runs = 0
    t0 = time.perf_counter()
    with log.open("w") as out:
        for p in problems:
            for e in range(episodes):
                messages: list[dict[str, str]] = [{"role": "system", "content": SYSTEM},
                                                  {"role": "user", "content": f"Problem: {p['problem']}"}]
                for t in range(max_turns):
                    r = client.chat.completions.create(model=model, messages=messages,  # type: ignore[arg-type]
                                                       max_tokens=256, seed=e * 1000 + t)
                    text = r.choices[0].message.content or ""
                    turns += 1
                    out.write(json.dumps({"problem": p["id"], "episode": e, "turn": t, "text": text,
                                          "usage": r.usage.model_dump() if r.usage else None}) + "\n")
                    messages.append({"role": "assistant", "content": text})
                    blocks = FENCE.findall(text)
                    if not blocks:
                        break
                    results = []
                    for i, code in enumerate(blocks):
                        res = sandbox.run(code, timeout_s=10)
                        runs += 1
                        out.write(json.dumps({"problem": p["id"], "episode": e, "turn": t, "call": i,
                                              "output": res.stdout, "outcome": res.outcome.value}) + "\n")
                        results.append(f"Result of run_python (block {i + 1}):\n{res.stdout}")
                    messages.append({"role": "user", "content": "\n\n".join(results)})
                out.flush()
    return time.perf_counter() - t0, turns, runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--tool-turns", type=int, default=3, help="turns with a python block before the answer")
    parser.add_argument("--in-flight", type=int, default=1,
                        help="problems at once; 1 compares with the sequential bare loop turn for turn")
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from proofflow.flows.solve import run_solve
    from proofflow.storage.db import Store

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "proofflow.testing.scripted_chat", "--port", str(port),
                               "--tool-turns", str(args.tool_turns)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    workdir = Path(tempfile.mkdtemp(prefix="proofflow-bench-agent-"))
    pfile = problems_file(workdir / "tir.jsonl", args.problems)
    problems = [json.loads(line) for line in pfile.read_text().splitlines()]
    max_turns = args.tool_turns + 1
    try:
        wait_for(url)
        bare_loop(url, "scripted", problems[:2], 1, max_turns, workdir / "warm.jsonl")  # warm the sandbox
        bare_s, bare_turns, bare_runs = bare_loop(url, "scripted", problems, args.episodes, max_turns,
                                                  workdir / "bare.jsonl")
        overrides = {
            "endpoint.model": "scripted", "endpoint.base_urls": [url], "storage.db_path": str(workdir / "pf.duckdb"),
            "solve.strategy": "tir", "solve.problems_in_flight": args.in_flight,
            "solve.tir": {"episodes": args.episodes, "max_turns": max_turns, "max_tool_calls": max_turns,
                          "max_tokens_per_turn": 256},
        }
        with prefect_test_harness(server_startup_timeout=120):
            run_solve(str(pfile), "warmup", overrides={**overrides, "solve.limit": 1,
                                                       "storage.db_path": str(workdir / "warm.duckdb")})
            # One problem on its own, timed: the run's fixed cost (start, resume check, the
            # end-of-run summary and artifacts), which is not per turn.
            t0 = time.perf_counter()
            run_solve(str(pfile), "one", overrides={**overrides, "solve.limit": 1,
                                                    "storage.db_path": str(workdir / "one.duckdb")})
            one_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            run_solve(str(pfile), "bench", overrides=overrides)
            pf_s = time.perf_counter() - t0
        store = Store(workdir / "pf.duckdb")
        (pf_turns,), = store.query("SELECT count(*) FROM samples WHERE stage = 'turn'")[1]
        (pf_runs,), = store.query("SELECT count(*) FROM tool_runs")[1]
        (tool_s,), = store.query("SELECT sum(duration_s) FROM tool_runs")[1]
    finally:
        server.terminate()
        server.wait()

    table = Table(title=f"agent turns: {args.problems} problems × {args.episodes} episodes × {max_turns} turns, "
                        f"stand-in scripted server, {os.cpu_count()} cores")
    for col in ("figure", "bare loop (openai + JSONL)", "proofflow tir (Prefect + DuckDB)"):
        table.add_column(col, justify="right")
    table.add_row("turns", str(bare_turns), str(pf_turns))
    table.add_row("tool runs (sandbox)", str(bare_runs), str(pf_runs))
    table.add_row("wall time", f"{bare_s:.2f} s", f"{pf_s:.2f} s")
    bare_turn, pf_turn = bare_s / max(1, bare_turns), pf_s / max(1, pf_turns)
    table.add_row("wall time per turn", f"{bare_turn * 1000:.1f} ms", f"{pf_turn * 1000:.1f} ms")
    sandbox_turn = (tool_s or 0) / max(1, pf_turns)
    table.add_row("sandbox time per turn (proofflow's tool runs)", "", f"{sandbox_turn * 1000:.1f} ms")
    table.add_row("proofflow overhead per turn", "", f"{(pf_turn - bare_turn) * 1000:.1f} ms")
    # The marginal turn: the whole run less the one-problem run, over the turns in between.
    one_turns = max_turns * args.episodes
    marginal = (pf_s - one_s) / max(1, pf_turns - one_turns)
    table.add_row("one-problem run (fixed cost + its turns)", "", f"{one_s:.2f} s")
    table.add_row("marginal time per turn (run − one-problem run)", f"{bare_turn * 1000:.1f} ms",
                  f"{marginal * 1000:.1f} ms")
    Console().print(table)
    print(f"ratio proofflow / bare per turn: {pf_turn / bare_turn:.2f}")
    print(f"ratio proofflow / bare per marginal turn (fixed per-run cost left out): {marginal / bare_turn:.2f}")


if __name__ == "__main__":
    main()

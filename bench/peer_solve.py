"""The bare peer script bench_pipeline.py compares proofflow with (issue 19): what a
researcher writes without an orchestrator. The openai client, 4 threads, one request per
problem with n samples, math-verify grading, a majority vote, one JSONL line per problem
appended as it finishes; rerun, it skips the problems its JSONL already has (a no-op
when it has them all).

Same problems (the first --limit of a GSM8K-style file), prompt (gvr's generate.txt),
sampling (proofflow's defaults: max_tokens 512, temperature 0.7, top_p 0.95; chat API)
and grading library (math-verify on the last \\boxed{} answer) as `proofflow solve -r 0`.
It keeps none of proofflow's guarantees (no call rows, no crash journal, no sandbox, no
timeout on grading): it is the floor, not a rival.

    python bench/peer_solve.py PROBLEMS.jsonl --base-url URL --model M -n 16 --limit 200 --out answers.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from string import Template
from typing import Any

import openai
from math_verify import parse, verify

PROMPT = Template((Path(__file__).resolve().parents[1] / "proofflow" / "strategies" / "gvr" / "prompts"
                   / "generate.txt").read_text())


def last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            if depth == 0:
                return text[i:j].strip()
            depth -= 1
    return None


def reference(answer: str) -> str:
    return answer.split("####")[-1].strip().replace(",", "")


def load(path: Path, limit: int | None) -> list[dict[str, Any]]:
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            problems.append({"id": str(row.get("id", f"line {number}")),
                             "problem": row.get("problem") or row["question"],
                             "answer": reference(str(row["answer"]))})
    return problems[:limit] if limit else problems


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("problems", type=Path)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("-n", "--samples", type=int, default=16)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled", per call
    problems = load(args.problems, args.limit)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["id"] for line in args.out.read_text().splitlines() if line.strip()}
    todo = [p for p in problems if p["id"] not in done]
    if not todo:
        print(f"{len(problems)} problems, all answered in {args.out}: nothing to do")
        return
    client = openai.OpenAI(base_url=args.base_url, api_key="none", max_retries=3)

    def ask(p: dict[str, Any]) -> list[str]:
        reply = client.chat.completions.create(
            model=args.model, messages=[{"role": "user", "content": PROMPT.substitute(problem=p["problem"])}],
            n=args.samples, max_tokens=512, temperature=0.7, top_p=0.95, seed=hash(p["id"]) & 0x7FFFFFFF)
        return [c.message.content or "" for c in reply.choices]

    correct_total = 0
    with ThreadPoolExecutor(args.threads) as pool, args.out.open("a") as out:
        futures = {pool.submit(ask, p): p for p in todo}
        for future in as_completed(futures):
            p = futures[future]
            answers = [last_boxed(text) for text in future.result()]
            gold = parse("\\boxed{" + p["answer"] + "}", parsing_timeout=None)
            correct = [a is not None and bool(verify(gold, parse("\\boxed{" + a + "}", parsing_timeout=None),
                                                        timeout_seconds=None)) for a in answers]
            votes = Counter(a for a in answers if a is not None)
            selected = votes.most_common(1)[0][0] if votes else None
            chosen = correct[answers.index(selected)] if selected is not None else False
            correct_total += chosen
            out.write(json.dumps({"id": p["id"], "answers": answers, "correct": correct,
                                  "selected": selected, "selected_correct": chosen}) + "\n")
            out.flush()
    print(f"{len(todo)} problems answered ({len(problems) - len(todo)} already were), "
          f"{correct_total} majority answers correct")


if __name__ == "__main__":
    main()

"""One `ask` task run carries a unit's requests of a stage (tasks/ask.py, issue 19): every
answer is handed to the flow the moment it returns, not when the unit's last one does,
and a request that fails for good loses neither its own paid calls nor the others'
answers. Real HTTP to the STAND-IN instant model server; no Prefect (the outbox is the
driver's hook, tasks/context.py)."""

from __future__ import annotations

import threading

import pytest

from proofflow.llm.client import EndpointError
from proofflow.problems import example_path, load_problems
from proofflow.storage.records import CallRow, SampleRow
from proofflow.tasks.ask import ask_all
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, outbox
from proofflow.tasks.generate import plan_generate
from proofflow.testing.instant_server import Behaviour, InstantServer


class HoldOne(Behaviour):
    """Answers at once, except the problem whose statement has `held` in it: that one
    waits until `release` is set (a slow request among a unit's fast ones)."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.release = threading.Event()

    def completion(self, prompt: str, seed: int, index: int) -> str:
        if self.held in prompt:
            assert self.release.wait(30)
        return super().completion(prompt, seed, index)


def unit(url: str, problems: int, **overrides: object) -> tuple[RunContext, list[WorkItem]]:
    from proofflow.config import load_settings

    settings = load_settings(overrides={"endpoint.model": "instant", "endpoint.base_urls": [url],
                                        "endpoint.backoff_s": 0.01, "solve.samples": 2, **overrides})
    items = [WorkItem(p) for p in load_problems(example_path())[:problems]]
    return RunContext("run-1", "r", "examples", settings), items


def test_each_answer_is_handed_over_as_it_returns_not_with_the_units_last() -> None:
    problems = load_problems(example_path())[:4]
    behaviour = HoldOne(problems[3].statement)
    with InstantServer(behaviour=behaviour) as srv:
        ctx, items = unit(srv.base_url, 4)
        handed: list[StageOutput] = []
        three = threading.Event()

        def receive(out: StageOutput) -> None:
            handed.append(out)
            if len(handed) == 3:
                three.set()

        result: list[StageOutput] = []
        with outbox(receive):
            # the task's thread gets a copy of the context, as the driver's runner gives it
            import contextvars

            worker = threading.Thread(target=contextvars.copy_context().run,
                                      args=(lambda: result.append(ask_all(ctx, plan_generate(ctx, items))),))
            worker.start()
        assert three.wait(30), "the three quick answers were not handed over while the fourth was held"
        assert worker.is_alive() and not result  # the unit's task has not returned yet
        answered = {r.problem_id for out in handed for r in out.rows if isinstance(r, SampleRow)}
        assert answered == {i.problem.id for i in items[:3]}
        behaviour.release.set()
        worker.join(30)
    assert len(handed) == 4 and result and result[0].rows == []  # all handed over, nothing kept back
    samples = [r for out in handed for r in out.rows if isinstance(r, SampleRow)]
    calls = [r for out in handed for r in out.rows if isinstance(r, CallRow)]
    assert len(samples) == 8 and len({s.sample_id for s in samples}) == 8 and len(calls) == 4


@pytest.mark.parametrize("listening", [True, False])
def test_a_failed_request_keeps_its_calls_and_the_others_answers(listening: bool) -> None:
    """The 3rd request received fails for good (HTTP 500, no retries): the two others'
    samples are handed over (or, with no outbox, carried by the raised error), and the
    error carries the failed request's call row."""
    with InstantServer(behaviour=Behaviour(fail_from=3)) as srv:
        ctx, items = unit(srv.base_url, 3, **{"endpoint.max_retries": 0})
        handed: list[StageOutput] = []
        with pytest.raises(EndpointError) as raised:
            if listening:
                with outbox(handed.append):
                    ask_all(ctx, plan_generate(ctx, items))
            else:
                ask_all(ctx, plan_generate(ctx, items))
    exc = raised.value
    carried: StageOutput = exc.stage_output  # type: ignore[attr-defined]
    rows = [r for out in handed for r in out.rows] + carried.rows
    samples = [r for r in rows if isinstance(r, SampleRow)]
    assert len(samples) == 4 and len({s.problem_id for s in samples}) == 2
    assert (len(handed) == 2) is listening and (carried.rows == []) is listening
    failed_calls = [c for c in exc.calls if isinstance(c, CallRow)]
    assert failed_calls and all(c.status != "ok" for c in failed_calls)

"""`[prove.search]`: the step search's settings (the `search` strategy's section; the
`dsp` strategy reads `dsp_step_search` and `dsp_max_expansions` from it too)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from proofflow.strategies.registry import StrategyConfig


class SearchConfig(StrategyConfig):
    """`[prove.search]`: the step search's budgets (per goal) and shape."""

    k: int = Field(4, ge=1, description="tactics proposed per expansion (n of one model request)")
    max_expansions: int = Field(16, ge=1, description="expansions (model requests) per goal")
    wall_s: float = Field(300.0, gt=0, description="wall time per goal, seconds, from its first expansion "
                          "answered in this process (Lean's start-up not counted; restarts on resume)")
    max_tokens: int | None = Field(None, ge=1, description="completion tokens per goal (None: no limit)")
    score: Literal["cumulative_logprob", "mean_logprob"] = Field(
        "cumulative_logprob", description="state priority: the path's summed log-probability (ReProver), "
        "or its mean per tactic (favours deeper states)")
    expansions_per_task: int = Field(4, ge=1, description="new expansions per task run; each task's rows "
                                     "are stored when it returns (what a killed run keeps)")
    tactic_timeout_s: float = Field(20.0, gt=0, description="wall time of one tactic; then the Lean "
                                    "process is replaced and the states recomputed")
    # Off by default: on the wasm Lean it costs a proof-state process (~30-100 s to start)
    # for every run whose sketches leave a hole automation cannot close.
    dsp_step_search: bool = Field(False, description="dsp (and whole's hole repair): step-search a hole "
                                  "automation did not close, before the hole-proof model (DSP+'s order); Lean only")
    dsp_max_expansions: int = Field(4, ge=1, description="dsp: expansions per hole")

"""pot: program of thought. The model writes a program whose printed output is the
answer; the sandbox runs it, the answer check reads what it printed."""

from __future__ import annotations

from proofflow.strategies.shared.answers import AnswerStrategy


class ProgramOfThought(AnswerStrategy):
    name = "pot"
    help = "program of thought: the sandbox runs the model's program, its output is the answer"
    runs_code = True

"""csv: code-based self-verification. The model answers, then writes code checking its
own answer; the sandbox runs it; a False sends the sample to repair (no oracle)."""

from __future__ import annotations

from proofflow.strategies.shared.answers import AnswerStrategy
from proofflow.verifiers.verdict import SELF_VERIFY


class CodeSelfVerification(AnswerStrategy):
    name = "csv"
    help = "code-based self-verification: the model checks its own answer in the sandbox; False is repaired"
    runs_code = True
    repair_verifier = SELF_VERIFY  # no oracle: the sample's own check decides

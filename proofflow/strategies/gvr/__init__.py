"""gvr: generate → verify → repair. Chain-of-thought answers; repairs are driven by the
reference-answer check (oracle feedback, for measuring repair itself)."""

from __future__ import annotations

from proofflow.strategies.shared.answers import AnswerStrategy

# Runs stored their strategy as "generate-verify-repair" before it had a short name: the
# runs table and the run identity keep that label, so those runs resume with the same
# identity (and their sample ids, derived from the run's name, stay the same).
LEGACY_LABEL = "generate-verify-repair"


class GenerateVerifyRepair(AnswerStrategy):
    name = "gvr"
    help = "generate → verify → repair with the reference check's feedback (alias generate-verify-repair)"
    aliases = (LEGACY_LABEL,)

    @property
    def run_label(self) -> str:
        return LEGACY_LABEL

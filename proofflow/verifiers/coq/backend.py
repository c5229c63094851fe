"""The Coq backend: Coq's answers to everything the neutral code asks a FormalBackend
(its text rules, holes, proof text, automation and checker)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from proofflow.verifiers.coq import holes, rules
from proofflow.verifiers.formal.backend import CheckerOptions, TextRule
from proofflow.verifiers.formal.policy import AuditPolicy
from proofflow.verifiers.formal.types import FormalChecker, FormalProblem

# Tried on every hole before a model is asked, cheapest-first ([prove] automation_coq
# replaces the list).
COQ_AUTOMATION = ["lia", "nia", "ring", "field", "auto", "intuition", "congruence", "easy"]
_PROOF_END = re.compile(r"(?:Qed|Defined|Admitted|Abort|Save\s+\w+)\s*\.\s*$")


class CoqBackend(rules.CoqSyntax):
    name = "coq"
    prompt_variant = "coq"
    allowed_axioms: frozenset[str] = frozenset()  # "Closed under the global context"
    text_rules: Sequence[TextRule] = rules.TEXT_RULES
    statement_form = "`Theorem NAME : ... .`"
    environment_help = "install the Coq libraries the header requires"
    proof_states = False
    # The language's text and hole functions (rules.py, holes.py), as methods.
    statement_core = staticmethod(rules.statement_core)
    declaration = staticmethod(rules.declaration)
    fill_hole = staticmethod(holes.fill_hole)
    mask_failing_lines = staticmethod(holes.mask_failing_lines)
    close_open_proof = staticmethod(holes.close_open_proof)
    whole_proof_hole = staticmethod(holes.whole_proof_hole)
    ensure_closed = staticmethod(holes.ensure_closed)

    def redefinition(self) -> re.Pattern[str]:
        return rules.REDEFINITION

    def extra_rejections(self, problem: FormalProblem, code: str, policy: AuditPolicy) -> list[str]:
        if policy.allowed_requires is None:
            return []
        header = rules.requires(problem.header)
        if any(m not in header and m not in policy.allowed_requires for m in rules.requires(code)):
            return ["unexpected_require"]
        return []

    def theorem_name(self, statement: str) -> str | None:
        m = rules.THEOREM_NAME.match(statement)
        return m.group(1) if m else None

    def statement_error(self, statement: str) -> str | None:
        return None if statement.endswith(".") else "a Coq statement ends with '.'"

    def declarations_start(self, text: str) -> int | None:
        m = rules.DECLARATIONS_START.search(text)
        return m.start() if m else None

    def assemble(self, statement: str, body: str) -> str:
        if not body.startswith("Proof"):
            body = "Proof.\n" + body
        if not _PROOF_END.search(body):
            body = body + "\nQed."
        return statement.strip() + "\n" + body + "\n"

    def hole_text(self, text: str) -> str:
        text = re.sub(r"^\s*Proof\s*\.", "", text)
        text = re.sub(r"(?:Qed|Defined|Admitted)\s*\.\s*$", "", text).strip()
        return text or "admit."

    def tactic_text(self, tactic: str) -> str:
        return tactic if tactic.endswith(".") else tactic + "."

    def automation(self, header: str) -> list[str]:
        return list(COQ_AUTOMATION)

    def make_checker(self, options: CheckerOptions) -> FormalChecker:
        # Imported here: the checker pulls in the process pool; the rules above do not.
        from proofflow.verifiers.coq.checker import CoqChecker
        from proofflow.verifiers.coq.common import CoqConfig

        # options.memory_mb is not passed: the [prove] memory cap is Lean's, Coq keeps
        # CoqConfig.memory_mb (4 GB), as before the registry.
        return CoqChecker(CoqConfig(timeout_s=options.timeout_s, workers=options.workers))


COQ = CoqBackend()

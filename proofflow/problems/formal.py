"""TEMPORARY alias of problems/formal_set.py while callers move to `proofflow.problems`
(issue 10.4: this name clashed with verifiers/formal.py). Removed once flows/prove.py and
tests/verifiers/test_coq.py import from the package."""

from proofflow.problems.formal_set import coq_examples, load_formal_problems, strip_lean_proof

__all__ = ["coq_examples", "load_formal_problems", "strip_lean_proof"]

"""Problem sets: loading and validating them, and the bundled examples.

Import from here (`from proofflow.problems import load_problems`): the module names say
which kind of problem file they read (answer_set, formal_set), and verifiers/ is where
answers and proofs are checked.
"""

from proofflow.problems.answer_set import Problem, example_path, load_problems
from proofflow.problems.formal_set import coq_examples, load_formal_problems, strip_lean_proof
from proofflow.problems.jsonl import ProblemFileError

__all__ = ["Problem", "ProblemFileError", "coq_examples", "example_path", "load_formal_problems",
           "load_problems", "strip_lean_proof"]

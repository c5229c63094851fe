"""Problem sets: loading and validating them, and the bundled examples."""

from proofflow.problems.answer import Problem, example_path, load_problems
from proofflow.problems.jsonl import ProblemFileError

__all__ = ["Problem", "ProblemFileError", "example_path", "load_problems"]

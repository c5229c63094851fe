"""Problem sets: loading and validating them, and the bundled examples."""

from proofflow.problems.answer import Problem, ProblemFileError, example_path, load_problems

__all__ = ["Problem", "ProblemFileError", "example_path", "load_problems"]

"""Final-answer verifier: which answer a completion commits to, and whether it equals a reference.

The public API is three functions (Math-Verify's parse/verify, plus a Verdict)::

    from proofflow.verifiers import answer

    answer.extract_answer("... so the answer is \\boxed{\\frac12}.").answer  # '\\frac12'
    answer.answers_equivalent("0.5", "\\frac{1}{2}")    # True / False / None (undecided)
    answer.check_answer(completion, reference)          # Verdict (PASS/FAIL/ERROR/TIMEOUT)

and ``normalize_answer`` (the vote key for majority voting). Modules by job:
``extraction`` (finding the answer), ``equivalence`` (normalising and deciding, with a
result cache), ``pool`` (the warm sympy worker processes), ``check`` (the Verdict).
"""

from proofflow.verifiers.answer.check import VERSION, check_answer
from proofflow.verifiers.answer.equivalence import answers_equivalent, normalize_answer
from proofflow.verifiers.answer.extraction import Extraction, extract_answer

__all__ = [
    "VERSION",
    "Extraction",
    "extract_answer",
    "normalize_answer",
    "answers_equivalent",
    "check_answer",
]

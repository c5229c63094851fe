"""Verifiers: plain Python, no Prefect. Each one turns a candidate into a `Verdict`.

This is where a verdict is decided. Nothing here imports prefect or duckdb.
"""

from proofflow.verifiers.verdict import Outcome, Verdict

__all__ = ["Outcome", "Verdict"]

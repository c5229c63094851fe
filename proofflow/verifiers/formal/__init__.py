"""The backend-neutral formal-checker interface, the audit, the verdict cache and the
hole helpers (mask / split / fill) that the draft → sketch → prove flows build on.

Modules by job: ``types`` (problem, CheckResult, the FormalChecker protocol),
``backend`` (the FormalBackend protocol a proof language implements, CheckerOptions),
``text`` (whitespace, positions), ``policy`` (AuditPolicy, text-only rejections),
``audit`` (CheckResult → Verdict), ``cache`` (VerdictCache, check_cached), ``holes``
(split / fill / mask). Every public name is importable from here.

Nothing here imports a backend: the functions that need a language's rules take its
FormalBackend; verifiers/registry.py finds one by name (and offers the same functions
taking the problem's backend name).
"""

from proofflow.verifiers.formal.audit import audit, feedback_text
from proofflow.verifiers.formal.backend import CheckerOptions, FormalBackend, TextRule
from proofflow.verifiers.formal.cache import CacheKey, VerdictCache, check_cached, source_hash
from proofflow.verifiers.formal.holes import fill_hole, mask_failing_lines, split_holes
from proofflow.verifiers.formal.policy import REJECTION_REASONS, AuditPolicy, static_rejections
from proofflow.verifiers.formal.text import normalize_ws
from proofflow.verifiers.formal.types import (
    Backend,
    CheckResult,
    FormalChecker,
    FormalProblem,
    Hole,
    Message,
    ProcessStats,
    Status,
)

__all__ = [
    "REJECTION_REASONS",
    "AuditPolicy",
    "Backend",
    "CacheKey",
    "CheckResult",
    "CheckerOptions",
    "FormalBackend",
    "FormalChecker",
    "FormalProblem",
    "Hole",
    "Message",
    "ProcessStats",
    "Status",
    "TextRule",
    "VerdictCache",
    "audit",
    "check_cached",
    "feedback_text",
    "fill_hole",
    "mask_failing_lines",
    "normalize_ws",
    "source_hash",
    "split_holes",
    "static_rejections",
]

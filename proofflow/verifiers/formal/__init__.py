"""The backend-neutral formal-checker interface, the audit, the verdict cache and the
hole helpers (mask / split / fill) that the draft → sketch → prove flows build on.

Modules by job: ``types`` (problem, CheckResult, the FormalChecker protocol), ``text``
(comment stripping, statement core), ``policy`` (AuditPolicy, text-only rejections),
``audit`` (CheckResult → Verdict), ``cache`` (VerdictCache, check_cached), ``holes``
(split / fill / mask). Every public name is importable from here.
"""

from proofflow.verifiers.formal.audit import audit, feedback_text
from proofflow.verifiers.formal.cache import CacheKey, VerdictCache, check_cached, source_hash
from proofflow.verifiers.formal.holes import fill_hole, mask_failing_lines, split_holes
from proofflow.verifiers.formal.policy import (
    LEAN_STANDARD_AXIOMS,
    REJECTION_REASONS,
    AuditPolicy,
    static_rejections,
)
from proofflow.verifiers.formal.text import normalize_ws, statement_core, strip_comments
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
    "LEAN_STANDARD_AXIOMS",
    "REJECTION_REASONS",
    "AuditPolicy",
    "Backend",
    "CacheKey",
    "CheckResult",
    "FormalChecker",
    "FormalProblem",
    "Hole",
    "Message",
    "ProcessStats",
    "Status",
    "VerdictCache",
    "audit",
    "check_cached",
    "feedback_text",
    "fill_hole",
    "mask_failing_lines",
    "normalize_ws",
    "source_hash",
    "split_holes",
    "statement_core",
    "static_rejections",
    "strip_comments",
]

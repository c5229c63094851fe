"""The Coq backend: the formal checker that really runs on these machines (Coq 8.16).

Two ways to run Coq, both here because the bench compares them:

- `session` (default, ``session.py``): a pool of warm `coqtop -quiet -emacs` processes
  on the process-pool primitive; the header's state is reused with `BackTo`.
- `coqc` (``coqc.py``): one `coqc` process per check on a scratch file (cold start).

Both: a per-check wall-clock timeout (the process group is killed; a session respawns on
the next check), RLIMIT_AS per process, a scratch working directory, and no shell: the
untrusted source only ever travels through a pipe or a file. The statement's elaborated
type is compared with the statement elaborated on the header alone, both printed in the
final state (``common.reference_module`` says why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proofflow.verifiers.coq.checker import CoqChecker
    from proofflow.verifiers.coq.common import CoqConfig, CoqNotFound, coq_version

__all__ = ["CoqChecker", "CoqConfig", "CoqNotFound", "coq_version"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the leaf modules (``lex``) import without the checker and its imports.
    if name == "CoqChecker":
        from proofflow.verifiers.coq.checker import CoqChecker

        return CoqChecker
    if name in ("CoqConfig", "CoqNotFound", "coq_version"):
        from proofflow.verifiers.coq import common

        return getattr(common, name)
    raise AttributeError(name)

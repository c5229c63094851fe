"""The Python sandbox: untrusted (model-written) Python runs here, and its results become
Verdicts.

- ``runner.py``: ``Sandbox``, the host-side pool of zygotes, and ``self_verify``;
- ``result.py``: what one execution returns (``ExecResult`` under ``Limits``) and the two
  verdict builders; no processes;
- ``zygote.py``: the isolated, warm process that forks one child per execution. It is run
  as a script by path and loads ``isolation.py`` and ``limits.py`` (its siblings, standard
  library only) by path too: this package is never on the sandboxed program's path;
- ``code_blocks.py``: finding the program in a model's answer (pure text).
"""

from proofflow.verifiers.sandbox.result import (
    SELF_VERIFY_VERSION,
    VERSION,
    ExecResult,
    Limits,
    exec_verdict,
    self_verify_verdict,
)
from proofflow.verifiers.sandbox.runner import Sandbox, SandboxUnavailable, default_sandbox, self_verify

__all__ = [
    "VERSION",
    "SELF_VERIFY_VERSION",
    "ExecResult",
    "Limits",
    "Sandbox",
    "SandboxUnavailable",
    "default_sandbox",
    "exec_verdict",
    "self_verify",
    "self_verify_verdict",
]

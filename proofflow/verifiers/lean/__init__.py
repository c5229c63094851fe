"""The Lean 4 backends behind one FormalChecker interface (docs/formal.md):

- `program` (default): proofflow's own checker program, `Checker.lean`, run with
  `lean --run` (or `lake env lean --run` in a Lean project with Mathlib); the audit's
  facts come from inside Lean (program.py);
- `repl`: a pool of leanprover-community/repl processes (repl.py);
- `kimina`: a Kimina Lean Server over HTTP (kimina.py).

install.py installs the unofficial wasm Lean used where no toolchain is available.
"""

from proofflow.verifiers.lean.kimina import KiminaChecker, KiminaConfig
from proofflow.verifiers.lean.repl import (
    LeanConfig,
    LeanRepl,
    LeanReplChecker,
    classify,
    find_lean_toolchain,
    lean_version,
    parse_axioms,
    to_holes,
    to_messages,
)

__all__ = ["KiminaChecker", "KiminaConfig", "LeanConfig", "LeanRepl", "LeanReplChecker", "classify",
           "find_lean_toolchain", "lean_version", "parse_axioms", "to_holes", "to_messages"]

"""The Lean 4 backend: Lean's answers to everything the neutral code asks a
FormalBackend (its text rules, holes, proof text, automation) and its three checkers
(`program`: proofflow's checker program, the default; `repl`: a REPL pool; `kimina`: a
Kimina Lean Server). Kimina is a checker variant of this backend, not a backend of its
own: its problems, prompts and rules are Lean's (registry.py names it `kimina` too)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from proofflow.verifiers.formal.backend import CheckerOptions, TextRule
from proofflow.verifiers.formal.policy import AuditPolicy
from proofflow.verifiers.formal.types import FormalChecker, FormalProblem
from proofflow.verifiers.lean import holes, rules

# Tried on every hole, cheapest-first: what exists in the problem's environment. Core
# Lean has the first list; a header importing Mathlib adds the second ([prove]
# automation_lean, when set, is used as given).
LEAN_AUTOMATION = ["omega", "decide", "simp", "grind", "rfl"]
LEAN_MATHLIB_AUTOMATION = ["norm_num", "linarith", "nlinarith", "positivity", "aesop"]
CHECKERS = ("program", "repl", "kimina")


class LeanBackend:
    name = "lean"
    prompt_variant = "lean"
    allowed_axioms = rules.LEAN_STANDARD_AXIOMS
    hole_pattern = rules.HOLES
    text_rules: Sequence[TextRule] = rules.TEXT_RULES
    statement_form = "`theorem NAME ...`"
    environment_help = ("point proofflow at a Lean project that has it: --lean-project DIR "
                        "or [prove] lean_project_dir = \"DIR\" (a Lake project with Mathlib)")
    proof_states = True
    # The language's text and hole functions (rules.py, holes.py), as methods.
    strip_comments = staticmethod(rules.strip_comments)
    statement_core = staticmethod(rules.statement_core)
    declaration = staticmethod(rules.declaration)
    fill_hole = staticmethod(holes.fill_hole)
    mask_failing_lines = staticmethod(holes.mask_failing_lines)
    whole_proof_hole = staticmethod(holes.whole_proof_hole)

    def __init__(self, checker: str | None = None) -> None:
        # A fixed checker variant (the registry's `kimina`), else options.variant decides.
        if checker is not None and checker not in CHECKERS:
            raise ValueError(f"Lean checker {checker!r}: expected one of {', '.join(CHECKERS)}")
        self.checker = checker

    def redefinition(self) -> re.Pattern[str]:
        return rules.REDEFINITION

    def extra_rejections(self, problem: FormalProblem, code: str, policy: AuditPolicy) -> list[str]:
        return []

    def theorem_name(self, statement: str) -> str | None:
        m = rules.THEOREM_NAME.match(statement)
        return m.group(1) if m else None

    def statement_error(self, statement: str) -> str | None:
        return None

    def declarations_start(self, text: str) -> int | None:
        m = rules.DECLARATIONS_START.search(text)
        return m.start() if m else None

    def assemble(self, statement: str, body: str) -> str:
        lines = [ln if ln.startswith("  ") else "  " + ln.lstrip() for ln in body.splitlines() if ln.strip()]
        stmt = statement.rstrip()
        if not stmt.endswith("by"):
            stmt += " by"
        return stmt + "\n" + ("\n".join(lines) or "  sorry") + "\n"

    def hole_text(self, text: str) -> str:
        return re.sub(r"^\s*by\b", "", text).strip() or "sorry"

    def tactic_text(self, tactic: str) -> str:
        return tactic

    def close_open_proof(self, source: str) -> str:
        return source  # a Lean proof left open is an error at its end, masked like any other

    def ensure_closed(self, source: str) -> str:
        return source

    def automation(self, header: str) -> list[str]:
        return LEAN_AUTOMATION + (LEAN_MATHLIB_AUTOMATION if "Mathlib" in header else [])

    def make_checker(self, options: CheckerOptions) -> FormalChecker:
        variant = self.checker or options.variant or "program"
        if variant == "program":
            from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig, is_wasm_command
            from proofflow.verifiers.lean.toolchain import lean_command, wasm_workers

            command, cwd = lean_command(options.command, options.project_dir, options.install)
            # The wasm build is told by its command, here and in ProgramConfig.is_wasm (its memory cap).
            workers = wasm_workers(options.workers) if is_wasm_command(command) else options.workers
            program = ProgramConfig(lean_command=command, project_dir=cwd, timeout_s=options.timeout_s,
                                    workers=workers)
            if options.memory_mb is not None:
                program = replace(program, memory_mb=options.memory_mb)
            if options.recycle_after is not None:
                program = replace(program, recycle_after=options.recycle_after)
            return LeanProgramChecker(program)
        if variant == "repl":
            from proofflow.verifiers.lean.repl import LeanConfig, LeanReplChecker, find_lean_toolchain

            cfg = LeanConfig(project_dir=options.project_dir, timeout_s=options.timeout_s, workers=options.workers)
            if options.memory_mb is not None:
                cfg = replace(cfg, memory_mb=options.memory_mb)
            if options.recycle_after is not None:
                cfg = replace(cfg, recycle_after=options.recycle_after)
            if options.repl_command:
                cfg = replace(cfg, repl_command=tuple(options.repl_command))
            missing = find_lean_toolchain(cfg)
            if missing:
                raise RuntimeError(f"Lean backend unavailable: {missing} (docs/proving.md, 'miniF2F with Lean')")
            return LeanReplChecker(cfg)
        if variant == "kimina":
            from proofflow.verifiers.lean.kimina import KiminaChecker, KiminaConfig

            kimina = KiminaConfig(api_key=options.api_key, timeout_s=options.timeout_s)
            return KiminaChecker(replace(kimina, url=options.url) if options.url else kimina)
        raise ValueError(f"Lean checker {variant!r}: expected one of {', '.join(CHECKERS)}")


LEAN = LeanBackend()

"""The strategy registry: every way of attacking a problem set, looked up by name.

A strategy is one folder (or module) that owns everything about it: its name, kind and
help text, its typed settings section, the identity keys it adds to a run, the stages
whose samples count as its candidates (pass@k and the other first-attempt views read
them from here, through the `strategy_candidate_stages` table the run fills), the chain
of stages the flow drives, and its prompt templates.

How to add a strategy
=====================

1. Make a folder (a package), e.g. `mypkg/beam/`, with `__init__.py` and `prompts/`:

       from proofflow.strategies.registry import ChainEnv, Strategy, StrategyConfig

       class BeamConfig(StrategyConfig):          # the [solve.beam] / [prove.beam] section
           width: int = 4                         # (env: PROOFFLOW_SOLVE__BEAM__WIDTH)

       class Beam(Strategy):
           name = "beam"
           kind = "answer"                        # "answer" (solve) or "proof" (prove)
           help = "beam search over partial answers"
           config_model = BeamConfig
           candidate_stages = ("generate",)       # samples that count for pass@k

           def identity_keys(self, settings):     # what changes the meaning of its samples
               return {"strategy": self.name, "beam_width": self.config(settings).width}

           def chain(self, ctx, items, env):      # a generator of stages (flows/chains.py)
               from proofflow.flows.chains import asks
               from proofflow.tasks.ask import ask
               from proofflow.tasks.sampling import missing_indices
               ...
               yield asks(ask, ctx, plans, env.names, "generate")

   `chain` yields one stage at a time: a list of `Call(task, args)` (flows/chains.py);
   it resumes once that stage's rows are stored, so the next stage plans from them.
   Model requests go through the one model-asking task, `tasks.ask.ask`, with a `Plan`
   whose `messages` are the chat turns (tasks/sampling.py). Checking, selecting and
   finishing are the existing stage tasks (tasks/verify.py, select.py, check_proofs.py,
   finalize.py, ...). `self.prompt("generate", problem=...)` fills
   `<your package>/prompts/generate.txt` (`$name` placeholders).

2. Register it. Built-ins are listed in `BUILTINS` below and declared in pyproject.toml;
   a third party declares the Python entry point group `proofflow.strategies`:

       [project.entry-points."proofflow.strategies"]
       beam = "mypkg.beam:Beam"

   and `pip install` (or `pip install -e .`) registers it. `proofflow solve --strategy beam`
   then finds it, its help text shows in `--help`, and `[solve.beam]` is its section.

The built-ins: answers `gvr` (generate → verify → repair; the old name
`generate-verify-repair` is an alias and is what its runs store), `pot`, `csv`; proofs
`whole`, `dsp`. tests/strategies_fixture/ is a small third-party strategy registered
through the entry point group at test time.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata, resources
from string import Template
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.flows.chains import Call, Names
    from proofflow.tasks.context import RunContext, WorkItem

ENTRY_POINT_GROUP = "proofflow.strategies"
Kind = Literal["answer", "proof"]
SECTION = {"answer": "solve", "proof": "prove"}  # the settings section a kind's strategies live under

# The built-in strategies: name -> "module:Class" (also declared as entry points in
# pyproject.toml; listed here too so a source checkout that was never pip-installed
# has them).
BUILTINS = {
    "gvr": "proofflow.strategies.gvr:GenerateVerifyRepair",
    "pot": "proofflow.strategies.pot:ProgramOfThought",
    "csv": "proofflow.strategies.csv:CodeSelfVerification",
    "whole": "proofflow.strategies.whole:WholeProof",
    "dsp": "proofflow.strategies.dsp:DraftSketchProve",
    "search": "proofflow.strategies.search:StepSearch",
    "tir": "proofflow.strategies.tir:ToolIntegratedReasoning",
    "agent": "proofflow.strategies.agent:ProofAgent",
}


class StrategyConfig(BaseModel):
    """A strategy's own settings section (`[solve.<name>]` / `[prove.<name>]`); unknown
    keys are refused like everywhere else (config.ConfigModel)."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ChainEnv:
    """What the flow hands a chain besides the run context and the work items."""

    names: Names                                      # task-run names for this unit
    persist: Callable[[Sequence[Any]], None]          # store rows made without a task (no wait)
    known: Any = None                                 # prove: the verdict cache (KnownChecks)
    extra: dict[str, Any] = field(default_factory=dict)


Chain = Generator[list["Call"], None, None]


class Strategy(ABC):
    """One strategy. Subclasses set the class attributes and implement `chain`."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    help: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    config_model: ClassVar[type[StrategyConfig]] = StrategyConfig
    candidate_stages: ClassVar[tuple[str, ...]] = ("generate",)

    @property
    def run_label(self) -> str:
        """What `runs.strategy` stores for its runs (a solve run: the name; a prove run:
        `prove-<name>`); the views map it to the candidate stages."""
        return self.name if self.kind == "answer" else f"prove-{self.name}"

    def config(self, settings: Settings) -> StrategyConfig:
        """This strategy's section of the settings (its defaults when the file has none)."""
        section = getattr(settings, SECTION[self.kind])
        return section.section(self.name, self.config_model)  # type: ignore[no-any-return]

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        """Keys added to the run's identity: resuming a run whose values differ is refused."""
        return {"strategy": self.name}

    @abstractmethod
    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        """The stages for one unit of work (a problem, or a chunk of problems)."""

    def prompt(self, template: str, **values: str) -> str:
        """Fill `prompts/<template>.txt` beside the strategy's module; `$name` placeholders,
        so LaTeX braces stay literal."""
        package = type(self).__module__
        if not resources.files(package).joinpath("prompts").is_dir():
            package = package.rpartition(".")[0]  # a module in the folder, not its __init__
        text = resources.files(package).joinpath("prompts", f"{template}.txt").read_text()
        return Template(text).substitute(**values)


class UnknownStrategy(ValueError):
    """A strategy name nothing registers (the message lists the ones that exist)."""


def _load(target: str) -> type[Strategy]:
    module, _, attr = target.partition(":")
    found = getattr(importlib.import_module(module), attr)
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise TypeError(f"{target} is not a proofflow Strategy subclass")
    return found


@cache
def _registered() -> dict[str, str]:
    """name -> "module:Class": the built-ins, then the installed entry points (an
    installed distribution may not replace a built-in)."""
    found = dict(BUILTINS)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


@cache
def _instance(target: str) -> Strategy:
    return _load(target)()


def refresh() -> None:
    """Forget what was loaded: after installing a distribution in this process (tests)."""
    _registered.cache_clear()
    _instance.cache_clear()


def strategies(kind: Kind | None = None) -> list[Strategy]:
    """Every registered strategy (of one kind), in registration order."""
    found = [_instance(target) for target in _registered().values()]
    return [s for s in found if kind is None or s.kind == kind]


def strategy(name: str, kind: Kind | None = None) -> Strategy:
    """The strategy called `name` (or one of its aliases), of `kind` when given."""
    target = _registered().get(name)  # by its registered name: only its own module is imported
    if target is not None:  # (loading them all costs seconds: some import the model client)
        found = _instance(target)
        if found.name == name and (kind is None or found.kind == kind):
            return found
    for s in strategies(kind):
        if name == s.name or name in s.aliases:
            return s
    known = ", ".join(s.name for s in strategies(kind))
    what = f"{kind} strategy" if kind else "strategy"
    raise UnknownStrategy(f"unknown {what} {name!r} (registered: {known})")


def registered_names() -> list[str]:
    """Every registered name, of either kind, without importing a strategy (loading them
    all imports the agents' model client: seconds of a run's start-up)."""
    return list(_registered())


def names(kind: Kind) -> list[str]:
    return [s.name for s in strategies(kind)]


def help_text(kind: Kind) -> str:
    """`--strategy`'s help: each name with its one line."""
    return "; ".join(f"{s.name}: {s.help}" for s in strategies(kind))

"""All configuration in one typed place.

Precedence, lowest first: built-in defaults < a TOML file (`--config`) < environment
variables (PROOFFLOW_*, nested with `__`, e.g. PROOFFLOW_ENDPOINT__BASE_URLS='["http://gpu1:8000/v1"]')
< command-line flags.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from proofflow import config_errors

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_PORT = 8000


class ConfigModel(BaseModel):
    """Every settings section: an unknown key is an error (config_errors.py names it and
    suggests the nearest valid key), never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class PriceConfig(ConfigModel):
    """How a call's cost is computed. Leave everything unset and cost stays NULL."""

    input_per_mtok: float | None = Field(None, ge=0, description="$ per 1M prompt tokens")
    output_per_mtok: float | None = Field(None, ge=0, description="$ per 1M completion tokens")
    gpu_hour: float | None = Field(
        None, ge=0, description="$ per GPU-hour; a call costs latency × rate ÷ max_concurrency"
    )

    @model_validator(mode="after")
    def _one_pricing_model(self) -> PriceConfig:
        token_priced = self.input_per_mtok is not None or self.output_per_mtok is not None
        if token_priced and self.gpu_hour is not None:
            raise ValueError("price: set per-token prices or gpu_hour, not both")
        if token_priced and (self.input_per_mtok is None or self.output_per_mtok is None):
            raise ValueError("price: set both input_per_mtok and output_per_mtok")
        return self

    @property
    def configured(self) -> bool:
        return self.input_per_mtok is not None or self.gpu_hour is not None


class EndpointConfig(ConfigModel):
    """One model behind one or more OpenAI-compatible base URLs (replicas)."""

    model: str = DEFAULT_MODEL
    base_urls: list[str] = Field(default_factory=lambda: [f"http://127.0.0.1:{DEFAULT_PORT}/v1"])
    api_key: str = "EMPTY"
    api: Literal["chat", "completions"] = "chat"
    supports_n: bool = Field(True, description="send n samples in one request")
    max_concurrency: int = Field(8, ge=1, description="requests in flight per base URL")
    timeout_s: float | None = Field(
        None,
        gt=0,
        description="one HTTP attempt's limit [default: max_tokens / slow_decode_tokens_per_s + timeout_margin_s]",
    )
    slow_decode_tokens_per_s: float = Field(
        2.0,
        gt=0,
        description="the slowest decode rate a healthy server is expected to reach per sequence (sizes the timeout)",
    )
    timeout_margin_s: float = Field(30.0, ge=0, description="added to the sized timeout: queueing and prefill")
    give_up_s: float | None = Field(
        None,
        gt=0,
        description="a request, retries included, fails after this long [default: the attempt timeout + 60 s]",
    )
    stall_after_s: float = Field(
        5.0,
        gt=0,
        description="requests waiting this long trigger a health probe; a server that does not answer it is reported",
    )
    max_retries: int = Field(4, ge=0, description="retries on connection errors, 429 and 5xx")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles each retry")
    slot_block: int = Field(
        8, ge=1,
        description="flows sharing the endpoint (runner.global_concurrency): global slots a process takes at once",
    )
    slot_lease_s: float = Field(
        60.0, ge=60, description="the lease of a block of global slots (Prefect's minimum: 60): renewed while held, "
        "back this long after a kill",
    )
    price: PriceConfig = Field(default_factory=PriceConfig)

    def request_timeout(self, max_tokens: int) -> float:
        """One attempt's HTTP timeout: `timeout_s`, or what `max_tokens` take at the slow rate."""
        if self.timeout_s is not None:
            return self.timeout_s
        return max_tokens / self.slow_decode_tokens_per_s + self.timeout_margin_s

    def give_up_after(self, max_tokens: int) -> float:
        """How long one request may take, retries included, before the stage fails with it."""
        if self.give_up_s is not None:
            return self.give_up_s
        return self.request_timeout(max_tokens) + 60.0

    @field_validator("base_urls", mode="before")
    @classmethod
    def _split_urls(cls, v: Any) -> Any:
        if isinstance(v, str):  # "http://a/v1,http://b/v1" from a flag or env var
            return [u.strip() for u in v.split(",") if u.strip()]
        return v

    @field_validator("base_urls")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("base_urls: give at least one URL")
        for url in v:  # checked before anything is created or tried (issue 20.12)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8000/v1")
        return [u.rstrip("/") for u in v]


class SamplingConfig(ConfigModel):
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    stop: list[str] = Field(default_factory=list)


class ReasoningConfig(ConfigModel):
    """Reasoning models (llm/reasoning.py): how thinking is told apart from the answer and
    how much of it a turn may spend."""

    think_tags: tuple[str, str] = Field(
        ("<think>", "</think>"), description="open and close tag of the thinking, when the server does not split it")
    prompt_opens_thinking: bool = Field(
        False,
        description="the chat template ends the prompt inside an open think block (untagged text is all thinking)")
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict, description='sent to vLLM with every chat request, e.g. {enable_thinking = false}')
    count_with_tokenizer: bool = Field(
        True, description="count reasoning tokens with the server's /tokenize when its usage does not report them")


class VoteWeights(ConfigModel):
    """Verification-weighted voting: a sample's vote counts by its self-verification
    verdict. Defaults as in the CSV paper (Zhou et al. 2023): True 1, uncertain 0.5, False 0.2."""

    verified: float = Field(1.0, ge=0)
    unverified: float = Field(0.5, ge=0, description="no check, or the check errored / timed out")
    refuted: float = Field(0.2, ge=0)


class StrategySections(ConfigModel):
    """A flow's section ([solve] / [prove]): the settings every strategy of its kind
    shares, the strategy's name, and one sub-section per registered strategy with that
    strategy's own settings (`[solve.csv]`, `[prove.dsp]`; env PROOFFLOW_SOLVE__CSV__...).
    The sub-sections' models come from the strategy registry (proofflow/strategies/), so
    a strategy installed through the entry point group has its section too."""

    kind: ClassVar[Literal["answer", "proof"]]
    # keys that moved from the flat section into a strategy's own: key -> strategy
    moved: ClassVar[dict[str, str]] = {}
    strategy: str
    sections: dict[str, Any] = Field(default_factory=dict, description="per-strategy sections, by name")

    @field_validator("strategy")
    @classmethod
    def _registered_strategy(cls, v: str) -> str:
        from proofflow.strategies.registry import UnknownStrategy, names, strategy

        try:
            return strategy(v, cls.kind).name  # an alias (generate-verify-repair) -> its name (gvr)
        except UnknownStrategy:
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": " | ".join(names(cls.kind))}) from None

    @model_validator(mode="before")
    @classmethod
    def _gather_sections(cls, data: Any) -> Any:
        """`csv = {...}` next to the shared keys is the csv strategy's section."""
        if not isinstance(data, dict):
            return data
        from proofflow.strategies.registry import registered_names

        data = dict(data)
        for key, owner in cls.moved.items():
            if key in data:
                section = "solve" if cls.kind == "answer" else "prove"
                raise ValueError(f"{key} is a key of [{section}.{owner}] now ({section}.{owner}.{key})")
        sections = dict(data.pop("sections", None) or {})
        for name in registered_names():  # their kind is checked when the section is validated
            if name in data and name not in cls.model_fields:
                sections[name] = data.pop(name)
        data["sections"] = sections
        return data

    @model_validator(mode="after")
    def _validate_sections(self) -> StrategySections:
        from proofflow.strategies.registry import strategy

        for name, value in list(self.sections.items()):
            model = strategy(name, self.kind).config_model
            self.sections[name] = value if isinstance(value, model) else model.model_validate(value)
        return self

    @model_serializer(mode="wrap")
    def _flat_sections(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        out.update(out.pop("sections", None) or {})  # dumped as written: [solve.csv]
        return out

    def section(self, name: str, model: type[BaseModel]) -> Any:
        """A strategy's section: as configured, else its defaults."""
        found = self.sections.get(name)
        return found if found is not None else model()


class SolveConfig(StrategySections):
    """The generate → verify → repair → select strategies.

    Each is a folder in proofflow/strategies/ (registry.py); its own settings are its
    sub-section, `[solve.<name>]`. The built-ins:

    - gvr (alias generate-verify-repair): chain-of-thought answers; repairs are driven by the
      reference-answer check (oracle feedback, for measuring repair itself).
    - pot: program of thought: the model writes a program whose printed output is the
      answer; the sandbox runs it.
    - csv: code-based self-verification: the model answers, then writes code checking its
      own answer; the sandbox runs it; a False sends the sample to repair (no oracle).
    """

    kind: ClassVar[Literal["answer", "proof"]] = "answer"
    strategy: str = Field("gvr", description="a registered answer strategy (proofflow/strategies/)")
    samples: int = Field(4, ge=1, description="candidates per problem (N)")
    repair_rounds: int = Field(1, ge=0, description="rounds of repair for failed candidates (R)")
    repair_after_pass: bool = Field(
        False, description="keep repairing a problem's failures after one candidate passed"
    )
    selection: Literal["majority", "weighted"] = "majority"
    vote_weights: VoteWeights = Field(default_factory=VoteWeights)
    repair_on: Literal["answer", "self_verify", "python_exec"] | None = Field(
        None, description="whose verdict sends a sample to repair [default: self_verify for csv, else answer]"
    )
    verify_timeout_s: float = Field(5.0, gt=0)
    exec_timeout_s: float = Field(10.0, gt=0, description="wall-clock limit per sandboxed program")
    allow_last_number: bool = Field(
        True, description="accept the last number in the text as the answer when nothing else is found"
    )
    max_tokens_per_problem: int | None = Field(
        None, ge=1, description="prompt + completion tokens (thinking included) of all a problem's samples: "
        "once its stored samples reach it, no further repair round is asked (results.stopped_by = token_budget)"
    )
    problems_in_flight: int = Field(4, ge=1, description="Prefect task-runner workers")
    # A unit's stages are one task run each (its requests of a stage one `ask`; its verify,
    # its select), and a task run costs ~7 ms of flow CPU and ~21 ms of Prefect server CPU
    # (flows/chains.py). 200 x 16 bench (instant stand-in, threads, 2 pairs each): Prefect
    # server CPU 7.0 s at 4, 4.1 s at 8, 2.5 s at 16; wall 2.40x, 1.94x, 1.91x the bare
    # script. The stored rows do not depend on it; each answer is stored as it returns.
    problems_per_task: int = Field(16, ge=1, description="problems per unit: each of its stages is one task run")
    limit: int | None = Field(None, ge=1, description="only the first N problems")



def _coq_automation() -> list[str]:
    """[prove] automation_coq's default: the Coq backend's list (verifiers/coq/backend.py)."""
    from proofflow.verifiers.coq.backend import COQ_AUTOMATION

    return list(COQ_AUTOMATION)


# The tactics tried on a hole by default are the backend's (verifiers/<backend>/backend.py:
# Coq's list; Lean's by environment, more when the header imports Mathlib).


class ProveConfig(StrategySections):
    """The formal proving flows (docs/proving.md): whole-proof or draft → sketch → prove."""

    kind: ClassVar[Literal["answer", "proof"]] = "proof"
    moved: ClassVar[dict[str, str]] = {"repair_candidates": "whole", "use_informal_proof": "dsp"}
    strategy: str = Field("whole", description="a registered proof strategy (proofflow/strategies/)")
    backend: str = Field("coq", description="a registered formal backend (verifiers/registry.py): coq | lean | kimina")
    samples: int = Field(4, ge=1, description="whole: proofs per problem (N); dsp: drafts/sketches per problem")
    repair_rounds: int = Field(1, ge=0, description="whole: model repair rounds with checker feedback (R)")
    repair_depth: int = Field(
        1, ge=0, description="APOLLO-style mask → holes → reassemble rounds on a failing proof (0: off)"
    )
    automation_coq: list[str] = Field(default_factory=_coq_automation)
    automation_lean: list[str] | None = Field(None, description="Lean tactics tried on holes [default: by environment]")
    hole_budget: int = Field(2, ge=0, description="prover-model samples per hole that automation left open")
    max_holes: int = Field(12, ge=1, description="a sketch with more holes than this is not worth proving")
    stop_on_first_complete: bool = Field(True, description="stop checking a problem's candidates once one is complete")
    check_timeout_s: float = Field(20.0, gt=0)
    workers: int = Field(2, ge=1, description="checker processes (Coq sessions / Lean checker processes or REPLs)")
    checker_recycle_after: int | None = Field(
        None, ge=1, description="checks per Lean checker process before a fresh one [default: the checker's: "
        "program 500, REPL 100]")
    lean_project_dir: str = "."
    lean_repl_command: list[str] = Field(
        default_factory=lambda: ["lake", "env", ".lake/packages/REPL/.lake/build/bin/repl"]
    )
    lean_memory_mb: int = Field(16384, ge=256, description="per Lean process: RLIMIT_AS (native), heap max (wasm)")
    lean_checker: Literal["program", "repl", "kimina"] = Field(
        "program", description="Lean: proofflow's checker program (lean --run), the REPL pool, or a Kimina server")
    lean_command: list[str] = Field(
        default_factory=list, description="program: how to run lean [default: lake env lean in a Lean project, "
        "else lean on PATH, else the unofficial wasm build]")
    kimina_url: str = "http://localhost:8000"
    kimina_api_key: str | None = None
    problems_in_flight: int = Field(2, ge=1, description="Prefect task-runner workers")
    limit: int | None = Field(None, ge=1, description="only the first N problems")

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, value: str) -> str:
        # The registry is the one list of backends: a new one is a folder and a registry line.
        from proofflow.verifiers.registry import names

        if value not in names():
            raise ValueError(f"unknown backend {value!r}; registered: {' | '.join(names())}")
        return value

    def automation(self, header: str = "") -> list[str]:
        """The tactics tried on a hole: the key `automation_<backend>` when set, else the
        backend's default for the problem's header."""
        from proofflow.verifiers.registry import backend

        chosen = backend(self.backend)
        configured = getattr(self, f"automation_{chosen.name}", None)
        return list(configured) if configured is not None else chosen.automation(header)


class RunnerConfig(ConfigModel):
    """Where the stage tasks run (docs/configuration.md, deployments/scaling.md)."""

    kind: Literal["threads", "dask", "ray"] = Field(
        "threads", description="threads: in the flow's process; dask / ray: on a cluster's worker processes"
    )
    address: str | None = Field(
        None, description="an existing cluster (dask: tcp://host:8786, ray: ray://host:10001); unset: a local one"
    )
    workers: int = Field(2, ge=1, description="worker processes of the local cluster")
    threads_per_worker: int = Field(
        4, ge=1, description="task threads per worker process (a stage waiting on the model holds one)"
    )
    global_concurrency: bool | None = Field(
        None,
        description=(
            "bound model requests per endpoint with Prefect global concurrency limits, taken in leased blocks: "
            "for several flows or worker processes sharing an endpoint [default: off; each process's own "
            "semaphore bounds its requests]"
        ),
    )

    @property
    def global_limits(self) -> bool:
        # Off unless asked for: model requests run in the flow's process (issue 19), where the
        # client's semaphore is the exact bound; a block of slots a SIGKILLed flow held stays
        # taken until its lease is reaped, which a rerun would otherwise wait for.
        return bool(self.global_concurrency)


# The one place that says which database a command uses without --db.
DEFAULT_DB_PATH = Path("proofflow.duckdb")
DB_PATH_ENV = "PROOFFLOW_DB_PATH"  # a short alias of PROOFFLOW_STORAGE__DB_PATH


def default_db_path() -> Path:
    """$PROOFFLOW_DB_PATH, else ./proofflow.duckdb: what every command uses without --db."""
    return Path(os.environ.get(DB_PATH_ENV) or DEFAULT_DB_PATH)


class StorageConfig(ConfigModel):
    db_path: Path = DEFAULT_DB_PATH
    wait_for_run: bool = Field(
        False, description="another process is working on the run: wait for it (--wait) instead of exiting")
    extend_run: bool = Field(
        False, description="the problem file gained lines since the run started: add them to the run (--extend)")
    flush_interval_s: float = Field(0.5, gt=0)
    lock_timeout_s: float = Field(30.0, ge=0)
    sql_memory_mb: int = Field(
        2048, ge=16, description="`proofflow sql`: memory cap of one query (DuckDB memory_limit; no spilling to disk)")
    sql_timeout_s: float = Field(
        60.0, gt=0, description="`proofflow sql`: a query is stopped after this long (--timeout)")


class ProblemsConfig(ConfigModel):
    """Reading problem files (problems/jsonl.py)."""

    max_line_bytes: int = Field(
        1 << 20, ge=1, description="a longer line is refused (file, line, size) before it is read whole")
    dedupe: bool = Field(
        False, description="repeated ids or problems: keep the first and say how many were dropped (--dedupe) "
        "instead of refusing the file")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PROOFFLOW_", env_nested_delimiter="__", extra="forbid"
    )

    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    solve: SolveConfig = Field(default_factory=SolveConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    prove: ProveConfig = Field(default_factory=ProveConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    reasoning: ReasoningConfig = Field(default_factory=ReasoningConfig)
    problems: ProblemsConfig = Field(default_factory=ProblemsConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)


class _ResolvedSettings(BaseModel):
    """Settings' fields without its sources: validates already-merged values."""

    model_config = {"extra": "forbid"}
    endpoint: EndpointConfig
    sampling: SamplingConfig
    solve: SolveConfig
    storage: StorageConfig
    prove: ProveConfig
    runner: RunnerConfig
    reasoning: ReasoningConfig
    problems: ProblemsConfig


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Defaults < config file < environment < overrides (CLI flags, dotted keys allowed)."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = tomllib.loads(Path(config_file).read_text())
        except FileNotFoundError:
            raise ValueError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {config_file}: {exc}") from None
    if os.environ.get(DB_PATH_ENV):  # a short alias used by every command
        file_values = _deep_merge(file_values, {"storage": {"db_path": default_db_path()}})
    # Bad keys and values: one line per key naming the file, variable or flag (config_errors.py).
    config_errors.reject_unknown_env(os.environ, Settings)
    settings = config_errors.validated(
        lambda: Settings(**file_values), Settings,
        config_errors.origin_finder(config_file, file_values, os.environ, "settings"))
    if overrides:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = nested
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        merged = _deep_merge(json.loads(settings.model_dump_json()), nested)
        # Validate the merged values as a plain model: going through Settings() again
        # would let the environment override the flags.
        resolved = config_errors.validated(lambda: _ResolvedSettings.model_validate(merged), Settings,
                                           lambda loc: "command line")
        settings = Settings.model_construct(**resolved.__dict__)
    return settings

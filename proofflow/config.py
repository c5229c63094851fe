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
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_PORT = 8000


class PriceConfig(BaseModel):
    """How a call's cost is computed. Leave everything unset and cost stays NULL."""

    input_per_mtok: float | None = Field(None, ge=0, description="$ per 1M prompt tokens")
    output_per_mtok: float | None = Field(None, ge=0, description="$ per 1M completion tokens")
    gpu_hour: float | None = Field(
        None, ge=0, description="$ per GPU-hour; a call costs latency × rate ÷ max_concurrency"
    )

    @model_validator(mode="after")
    def _one_pricing_model(self) -> "PriceConfig":
        token_priced = self.input_per_mtok is not None or self.output_per_mtok is not None
        if token_priced and self.gpu_hour is not None:
            raise ValueError("price: set per-token prices or gpu_hour, not both")
        if token_priced and (self.input_per_mtok is None or self.output_per_mtok is None):
            raise ValueError("price: set both input_per_mtok and output_per_mtok")
        return self

    @property
    def configured(self) -> bool:
        return self.input_per_mtok is not None or self.gpu_hour is not None


class EndpointConfig(BaseModel):
    """One model behind one or more OpenAI-compatible base URLs (replicas)."""

    model: str = DEFAULT_MODEL
    base_urls: list[str] = Field(default_factory=lambda: [f"http://127.0.0.1:{DEFAULT_PORT}/v1"])
    api_key: str = "EMPTY"
    api: Literal["chat", "completions"] = "chat"
    supports_n: bool = Field(True, description="send n samples in one request")
    max_concurrency: int = Field(8, ge=1, description="requests in flight per base URL")
    timeout_s: float = Field(600.0, gt=0)
    max_retries: int = Field(4, ge=0, description="retries on connection errors, 429 and 5xx")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles each retry")
    price: PriceConfig = Field(default_factory=PriceConfig)

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
        return [u.rstrip("/") for u in v]


class SamplingConfig(BaseModel):
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    stop: list[str] = Field(default_factory=list)


class SolveConfig(BaseModel):
    """The generate → verify → repair → select strategy."""

    strategy: Literal["generate-verify-repair"] = "generate-verify-repair"
    samples: int = Field(4, ge=1, description="candidates per problem (N)")
    repair_rounds: int = Field(1, ge=0, description="rounds of repair for failed candidates (R)")
    repair_after_pass: bool = Field(
        False, description="keep repairing a problem's failures after one candidate passed"
    )
    selection: Literal["majority"] = "majority"
    verify_timeout_s: float = Field(5.0, gt=0)
    allow_last_number: bool = Field(
        True, description="accept the last number in the text as the answer when nothing else is found"
    )
    problems_in_flight: int = Field(4, ge=1, description="Prefect task-runner workers")
    problems_per_task: int = Field(1, ge=1, description="problems per Prefect task run")
    limit: int | None = Field(None, ge=1, description="only the first N problems")


class StorageConfig(BaseModel):
    db_path: Path = Path("proofflow.duckdb")
    flush_interval_s: float = Field(0.5, gt=0)
    lock_timeout_s: float = Field(30.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PROOFFLOW_", env_nested_delimiter="__", extra="forbid"
    )

    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    solve: SolveConfig = Field(default_factory=SolveConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

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
    if "PROOFFLOW_DB_PATH" in os.environ:  # a short alias used by every command
        file_values = _deep_merge(file_values, {"storage": {"db_path": os.environ["PROOFFLOW_DB_PATH"]}})
    settings = Settings(**file_values)
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
        settings = Settings.model_construct(**_ResolvedSettings.model_validate(merged).__dict__)
    return settings

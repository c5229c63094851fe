"""What a stage task gets per process: the model client and the verifier pools.

Whichever process runs a task (the flow's own process with the thread runner, or a
Dask / Ray worker process) gets them here, made once per process and configuration by
the resource cache (tasks/resource_cache.py). Nothing here holds run state (no store,
no writer): a task gets a client or a checker, does its work and returns rows; the flow
writes them. Prefect's global concurrency slots are in tasks/prefect_limits.py, the
stall events in tasks/events.py.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from proofflow.config import EndpointConfig, ProveConfig, ReasoningConfig, SamplingConfig
from proofflow.llm.client import ModelClient
from proofflow.tasks.events import publish_stall
from proofflow.tasks.prefect_limits import LimitMissing, SlotBlocks, limit_name, prefect_slot
from proofflow.tasks.resource_cache import cached, close_all, config_key, open_count, scoped

if TYPE_CHECKING:
    from proofflow.verifiers.formal import FormalChecker
    from proofflow.verifiers.sandbox import Sandbox

__all__ = ["GLOBAL_LIMITS_ENV", "LimitMissing", "cached", "close_all", "config_key", "formal_checker",
           "limit_name", "model_client", "open_count", "prefect_slot", "sandbox", "scoped",
           "sharing_endpoints", "slot_blocks"]

# Set in a process whose model calls must also take a Prefect global concurrency slot
# (Dask and Ray workers: many processes, maybe many machines, share one endpoint). The
# Dask worker plugin (flows/runners.py) sets it on every worker it joins; the Ray runner
# passes it in the workers' runtime environment.
GLOBAL_LIMITS_ENV = "PROOFFLOW_GLOBAL_CONCURRENCY"

# The same for the model calls the flow's own process makes (flows/chains.py runs them
# there): set by the driver while a run whose endpoint is shared with other flows
# (runner.global_limits) drives its chains; the task threads inherit it (each task run
# starts from a copy of the submitting thread's context). Not set: the client's
# per-process semaphore is the bound, and no API call is paid.
_SHARED: contextvars.ContextVar[bool] = contextvars.ContextVar("proofflow_shared_endpoints", default=False)


@contextmanager
def sharing_endpoints(shared: bool) -> Iterator[None]:
    """Model clients got inside this block take Prefect's global slots (in blocks) when
    `shared`: the endpoint is shared with other flows."""
    token = _SHARED.set(shared)
    try:
        yield
    finally:
        _SHARED.reset(token)

_get = cached  # the name callers used before the cache had its own module


def model_client(endpoint: EndpointConfig, sampling: SamplingConfig,
                 reasoning: ReasoningConfig | None = None) -> ModelClient:
    """The model client for these settings. In a process that shares the endpoint with
    others (a worker: GLOBAL_LIMITS_ENV; the flow's process: `sharing_endpoints`), every
    request also holds a slot of the endpoint's Prefect global concurrency limit, taken
    from Prefect in blocks (`slot_blocks`; flows/runners.py creates the limits)."""
    shared = os.environ.get(GLOBAL_LIMITS_ENV) == "1" or _SHARED.get()
    return cached(
        "model_client (shared endpoint)" if shared else "model_client",
        (endpoint, sampling, reasoning or ReasoningConfig()),
        lambda: ModelClient(endpoint, sampling,
                            slot=_slot_for(endpoint) if shared else None,
                            on_stall=publish_stall, reasoning=reasoning),
        ModelClient.close,
    )


def slot_blocks(url: str, block: int, lease_s: float) -> SlotBlocks:
    """The process's block pool of one base URL's global slots (one per URL and sizes)."""
    pool: SlotBlocks = cached(f"slot_blocks {url} {block} {lease_s}", (),
                              lambda: SlotBlocks(url, block=block, lease_s=lease_s), SlotBlocks.close)
    return pool


def _slot_for(endpoint: EndpointConfig) -> Callable[[str], AbstractContextManager[None]]:
    return lambda url: slot_blocks(url, endpoint.slot_block, endpoint.slot_lease_s).slot()


def formal_checker(prove: ProveConfig) -> FormalChecker:
    """The formal checker (Coq sessions, Lean REPLs, or a Kimina client) for these settings."""
    from proofflow.tasks.checker_settings import make_checker

    def close(checker: Any) -> None:
        closer = getattr(checker, "close", None)  # a Kimina client holds no processes
        if closer is not None:
            closer()

    checker: FormalChecker = cached("formal_checker", (prove,), lambda: make_checker(prove), close)
    return checker


def sandbox() -> Sandbox:
    """The process's Python sandbox (a pool of zygotes; root only): the verifiers' own
    process-wide one (sandbox.default_sandbox), which the execute stage also uses, so
    a process never holds two pools of zygotes. close_all() closes it."""
    from proofflow.verifiers.sandbox import default_sandbox

    return default_sandbox()

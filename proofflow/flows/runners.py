"""Which task runner runs the stage tasks (settings.runner, `--runner`).

- `threads` (default): Prefect's ThreadPoolTaskRunner in the flow's own process, as
  before. The model client's per-process semaphore is the concurrency bound.

Whatever the kind, the calls that wait on the model run in the flow's own process
(flows/chains.py `Work.MODEL`, the driver's own thread runner); the runner gets the
computing stages (checks, sandbox runs, hole automation).
- `dask`: prefect-dask's DaskTaskRunner: a LocalCluster of `runner.workers` worker
  processes, or an existing cluster at `runner.address` (tcp://host:8786).
- `ray`: prefect-ray's RayTaskRunner: a local Ray instance, or `runner.address`
  (ray://host:10001). Not a dependency: `pip install prefect-ray ray` (deployments/scaling.md).

What the distributed runners add to prefect-dask / prefect-ray (why the subclasses):
1. The flow's Prefect API reaches the workers. Task runs on a worker report to the API
   named in the settings context the flow serialises with each task. A CLI run without
   PREFECT_API_URL talks to a temporary server that only the flow's process knows; the
   workers would each start their own temporary server (and time out doing so, measured
   here), so each submit carries the flow's API URL in its settings context.
2. The per-endpoint bound holds across processes and machines: one Prefect global
   concurrency limit per base URL (limit = endpoint.max_concurrency), upserted by the
   flow before its first request (flows/chains.py) and when the runner starts; a model
   request on a worker (a stage that computes and asks, enabled by GLOBAL_LIMITS_ENV)
   or in a flow sharing the endpoint holds a slot of it, taken from Prefect in blocks
   (tasks/prefect_limits.py `SlotBlocks`: a few API calls per block, not two per request).
3. Worker resources are closed when a Dask worker shuts down (a WorkerPlugin whose
   teardown calls tasks/resources.close_all: Coq sessions, sandbox zygotes, answer workers).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from proofflow.config import EndpointConfig, RunnerConfig, Settings
from proofflow.tasks.prefect_limits import limit_name
from proofflow.tasks.resource_cache import close_all, open_count
from proofflow.tasks.resources import GLOBAL_LIMITS_ENV

log = logging.getLogger(__name__)


def task_runner_for(settings: Settings, threads: int) -> TaskRunner[Any]:
    """The task runner the settings ask for; `threads` sizes the thread runner (the flows
    know how many stage tasks can wait at once)."""
    r = settings.runner
    if r.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=threads)
    limits = endpoint_limits(settings.endpoint) if r.global_limits else {}
    if r.kind == "dask":
        return dask_runner(r, limits)
    return ray_runner(r, limits)


def describe(settings: Settings) -> str:
    """One line for logs and the CLI: where the tasks run."""
    r = settings.runner
    if r.kind == "threads":
        return "threads in the flow's process"
    where = r.address or f"a local cluster of {r.workers} worker process(es)"
    return f"{r.kind} on {where}"


def endpoint_limits(endpoint: EndpointConfig) -> dict[str, int]:
    """Prefect global concurrency limit name -> slots, one per base URL (replica)."""
    return {limit_name(url): endpoint.max_concurrency for url in endpoint.base_urls}


def upsert_limits(limits: dict[str, int]) -> None:
    """Create or update the endpoints' global concurrency limits through the client API
    (the flow does this at start, so a changed max_concurrency takes effect)."""
    if not limits:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for name, slots in limits.items():
            client.upsert_global_concurrency_limit_by_name(name, slots)


# ------------------------------------------------------------------ the flow's API URL

def _api_url() -> str | None:
    """The Prefect API this process talks to, also when it is a temporary server."""
    from prefect.settings import PREFECT_API_URL

    configured = PREFECT_API_URL.value()
    if configured:
        return str(configured)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")


@contextmanager
def _with_api_url(url: str | None) -> Iterator[None]:
    """Make `url` part of the settings context that Prefect serialises with each task."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if url is None or PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


# ------------------------------------------------------------------------------ Dask
# The classes subclass prefect-dask's / prefect-ray's runners, which import dask or ray:
# they are made on first use (importing distributed costs 0.5 s, paid by every CLI run
# otherwise) and published as module attributes, so pickle finds them by name when
# Prefect sends the flow (and its runner) to a worker.

@functools.cache
def _dask_classes() -> tuple[type, type]:
    from distributed.diagnostics.plugin import WorkerPlugin
    from prefect_dask.task_runners import DaskTaskRunner

    class ProofflowResources(WorkerPlugin):
        """On each worker: mark it as one of many (global limits); on shutdown close the
        resources its tasks opened (Coq sessions, sandbox zygotes, answer workers)."""

        name = "proofflow-resources"
        # Registered once per cluster: each run registers it again, and replacing it
        # would tear down (close) the warm checkers the workers keep between runs.
        idempotent = True

        def __init__(self, global_limits: bool) -> None:
            self.global_limits = global_limits

        def setup(self, worker: Any) -> None:
            if self.global_limits:
                os.environ[GLOBAL_LIMITS_ENV] = "1"

        def teardown(self, worker: Any) -> None:
            n = open_count()
            close_all()
            log.info("worker %s closed %d proofflow resource(s)", getattr(worker, "address", "?"), n)

    class ProofflowDaskTaskRunner(DaskTaskRunner):
        def __init__(self, *args: Any, limits: dict[str, int] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.limits = dict(limits or {})
            self._flow_api: str | None = None

        def duplicate(self) -> Any:
            # Prefect re-creates the flow's runner on each worker (it stays unstarted there).
            return type(self)(
                address=self.address, cluster_class=self.cluster_class, cluster_kwargs=self.cluster_kwargs,
                adapt_kwargs=self.adapt_kwargs, client_kwargs=self.client_kwargs,
                performance_report_path=self.performance_report_path, limits=self.limits,
            )

        @property
        def client(self) -> Any:
            first = self._client is None
            client = super().client  # connects, or starts the local cluster, on first use
            if first:
                self._flow_api = _api_url()
                with _with_api_url(self._flow_api):
                    upsert_limits(self.limits)
                client.register_plugin(ProofflowResources(bool(self.limits)))
            return client

        def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None,
                   dependencies: Any = None) -> Any:
            self.client  # noqa: B018 - connect first: the API URL is known from then on
            with _with_api_url(self._flow_api):
                return super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)

    return _published(ProofflowResources), _published(ProofflowDaskTaskRunner)


def dask_runner(r: RunnerConfig, limits: dict[str, int]) -> TaskRunner[Any]:
    runner_cls = _dask_classes()[1]
    if r.address:
        return runner_cls(address=r.address, limits=limits)  # type: ignore[no-any-return]
    return runner_cls(  # type: ignore[no-any-return]
        cluster_kwargs={
            "n_workers": r.workers, "threads_per_worker": r.threads_per_worker, "processes": True,
            # No dashboard (a port per run); Dask's INFO lines would bury the progress bar.
            "dashboard_address": None, "silence_logs": logging.WARNING,
        },
        limits=limits,
    )


# ------------------------------------------------------------------------------- Ray

@functools.cache
def _ray_class() -> type:
    try:
        from prefect_ray import RayTaskRunner  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise RuntimeError(
            "--runner ray needs prefect-ray and ray: pip install 'prefect-ray==0.6.0' ray "
            "(deployments/scaling.md says what was tried here)"
        ) from None

    class ProofflowRayTaskRunner(RayTaskRunner):  # type: ignore[misc]
        def __init__(self, *args: Any, limits: dict[str, int] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.limits = dict(limits or {})
            self._flow_api: str | None = None

        def duplicate(self) -> Any:
            return type(self)(address=self.address, init_kwargs=self.init_kwargs, limits=self.limits)

        def __enter__(self) -> Any:
            self._flow_api = _api_url()
            with _with_api_url(self._flow_api):
                upsert_limits(self.limits)
            return super().__enter__()

        def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None,
                   dependencies: Any = None) -> Any:
            with _with_api_url(self._flow_api):
                return super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)

    return _published(ProofflowRayTaskRunner)


def ray_runner(r: RunnerConfig, limits: dict[str, int]) -> TaskRunner[Any]:
    env = {GLOBAL_LIMITS_ENV: "1"} if limits else {}
    init: dict[str, Any] = {"runtime_env": {"env_vars": env}} if env else {}
    if not r.address:
        # A local Ray instance of `workers` CPUs, without its dashboard.
        init.update(num_cpus=r.workers, include_dashboard=False)
    return _ray_class()(address=r.address, init_kwargs=init, limits=limits)  # type: ignore[no-any-return]


def _published(cls: type) -> type:
    cls.__module__ = __name__
    cls.__qualname__ = cls.__name__
    return cls


def __getattr__(name: str) -> Any:
    """Module attributes made on first use (see _dask_classes)."""
    if name in ("ProofflowResources", "ProofflowDaskTaskRunner"):
        plugin, runner = _dask_classes()
        return plugin if name == "ProofflowResources" else runner
    if name == "ProofflowRayTaskRunner":
        return _ray_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def runner_from_environment(threads: int) -> TaskRunner[Any]:
    """The flows' default runner (a deployment's flow run uses it): the runner section as
    the worker's environment gives it (PROOFFLOW_RUNNER__KIND=dask,
    PROOFFLOW_RUNNER__ADDRESS=tcp://...: a deployment's job_variables.env), else threads.
    Read when the flow module is imported, which is when a worker loads a deployment."""
    from proofflow.config import load_settings

    try:
        settings = load_settings()
    except ValueError:  # a bad variable is reported where the run loads its settings
        return ThreadPoolTaskRunner(max_workers=threads)
    return task_runner_for(settings, threads)

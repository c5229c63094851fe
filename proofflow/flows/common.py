"""Kept for importers outside flows/ (commands/, deployments' tests): the run session is
flows/session.py, names are flows/naming.py, artifacts flows/artifacts.py."""

from proofflow.flows.artifacts import artifact_key
from proofflow.flows.naming import SPLIT_NAMES, expand_run_name, problem_label, problem_set_name
from proofflow.flows.session import RunConfigMismatch, RunSession, RunSpec, hold_run, start_run

__all__ = ["SPLIT_NAMES", "RunConfigMismatch", "RunSession", "RunSpec", "artifact_key", "expand_run_name",
           "hold_run", "problem_label", "problem_set_name", "start_run"]

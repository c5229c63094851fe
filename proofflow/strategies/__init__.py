"""Strategies: one folder each (gvr, pot, csv, whole, dsp), looked up by name through
the registry (registry.py says how to add one)."""

from proofflow.strategies.registry import (
    ChainEnv,
    Strategy,
    StrategyConfig,
    UnknownStrategy,
    help_text,
    names,
    strategies,
    strategy,
)

__all__ = ["ChainEnv", "Strategy", "StrategyConfig", "UnknownStrategy", "help_text", "names", "strategies",
           "strategy"]

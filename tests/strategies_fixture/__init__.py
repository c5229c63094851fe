"""A third-party strategy that lives under tests/: registered through the entry point
group `proofflow.strategies` at test time (tests/strategies/test_entry_point.py), as a
separately installed distribution would be."""

"""Test doubles, named as such: stand-in model servers for tests and benchmarks.

Nothing in proofflow's own pipeline imports this package. `instant_server` answers
OpenAI-compatible requests instantly (overhead benchmarks, fault injection);
`recorded_server` replays recorded completions where a test needs a specific good
answer from the model. The real path is tested against the real vLLM server.
"""

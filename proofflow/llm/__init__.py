"""Where proofflow calls models: the OpenAI-compatible client (client.py) and the local
vLLM server it defaults to (server.py)."""

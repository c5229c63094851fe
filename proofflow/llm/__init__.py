"""Where proofflow calls models: the OpenAI-compatible client (client.py) and the local
vLLM server it defaults to (server.py: start/stop/status; install.py: its virtualenv and model;
server_config.py: where it lives)."""

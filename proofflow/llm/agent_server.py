"""The local vLLM server configured for agents: tool calling and a reasoning parser on.

The same SmolLM2 model and virtualenv as the default local server (llm/server.py), on its
own port (default 8011), started with:
- `--enable-auto-tool-choice --tool-call-parser hermes`: the answer's `<tool_call>` blocks
  come back as OpenAI `tool_calls`;
- `--chat-template templates/hermes_tools.jinja`: SmolLM2's own template has no tools; this
  one renders tool definitions, calls and results (Hermes style);
- `--reasoning-parser think_text` from the plugin templates/think_text_parser.py: the
  thinking comes back in the message's `reasoning` field.

Production reasoning / tool-calling models use their own template and vLLM's parser for
their family instead (docs/agents.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from proofflow.llm.server_config import LocalServerConfig

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHAT_TEMPLATE = TEMPLATES / "hermes_tools.jinja"
THINK_PARSER_PLUGIN = TEMPLATES / "think_text_parser.py"
AGENT_PORT = 8011


def agent_flags() -> tuple[str, ...]:
    return (
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--chat-template", str(CHAT_TEMPLATE),
        "--reasoning-parser-plugin", str(THINK_PARSER_PLUGIN), "--reasoning-parser", "think_text",
    )


def agent_server_config(port: int = AGENT_PORT, base: LocalServerConfig | None = None) -> LocalServerConfig:
    """The local server's config with the agent flags, on `port`."""
    return replace(base or LocalServerConfig(), port=port, extra_args=agent_flags())

"""Tools an agent's model may call, and reading its calls out of an answer.

A tool is a name, a description and a JSON schema of string/integer/boolean arguments
(what OpenAI `tools` carry), plus the fenced-block language that calls it in the text
protocol. Reading calls never trusts the model: malformed JSON, an unknown tool, a
missing or mistyped argument, or an input over `max_input_chars` is a `ToolCall` with an
`error`; the episode returns that error to the model as the tool's output (and stores
it) instead of running anything.

Two protocols (`tool_protocol` in a strategy's settings):
- `openai`: the server parses the model's calls (vLLM `--enable-auto-tool-choice
  --tool-call-parser …`) and returns them as `tool_calls`; results go back as `tool`
  messages.
- `text`: for servers or models without tool calling. Each fenced block whose language
  names a tool (```python → run_python, ```lean → check) is a call; the results come back
  as the next user message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "boolean": (bool,),
                                            "number": (int, float)}


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    # argument -> (JSON type, description); all required.
    arguments: Mapping[str, tuple[str, str]]
    fence: str | None = None  # the text protocol's block language that calls this tool
    main_argument: str | None = None  # which argument a fenced block's body fills

    def openai(self) -> dict[str, Any]:
        """The tool as an OpenAI `tools` entry."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": {"type": "object",
                           "properties": {k: {"type": t, "description": d} for k, (t, d) in self.arguments.items()},
                           "required": list(self.arguments)},
        }}


@dataclass(frozen=True)
class ToolCall:
    index: int  # its position among the turn's calls
    call_id: str  # the server's id, or text-N
    name: str
    raw: str  # the arguments as the model wrote them (JSON text, or the block's body)
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set: refused, the error goes back to the model


def openai_calls(tool_calls: Sequence[Mapping[str, Any]] | None, tools: Mapping[str, ToolSpec],
                 max_input_chars: int) -> list[ToolCall]:
    """The calls of an answer's OpenAI `tool_calls`, each checked against `tools`."""
    calls = []
    for i, raw_call in enumerate(tool_calls or ()):
        function = raw_call.get("function") if isinstance(raw_call, Mapping) else None
        call_id = str((raw_call.get("id") if isinstance(raw_call, Mapping) else None) or f"call-{i}")
        if not isinstance(function, Mapping):
            calls.append(ToolCall(i, call_id, "?", str(raw_call)[:2000], error="a tool call without a function"))
            continue
        name = str(function.get("name") or "")
        raw = function.get("arguments")
        text = raw if isinstance(raw, str) else json.dumps(raw)
        calls.append(_checked(i, call_id, name, text, tools, max_input_chars))
    return calls


def _checked(index: int, call_id: str, name: str, text: str, tools: Mapping[str, ToolSpec],
             max_input_chars: int) -> ToolCall:
    stored = text if len(text) <= max_input_chars else text[:max_input_chars]
    if len(text) > max_input_chars:
        return ToolCall(index, call_id, name, stored,
                        error=f"the call's input is {len(text):,} characters; the limit is {max_input_chars:,}")
    spec = tools.get(name)
    if spec is None:
        known = ", ".join(sorted(tools)) or "none"
        return ToolCall(index, call_id, name, stored, error=f"unknown tool {name!r}; the tools are: {known}")
    try:
        args = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        return ToolCall(index, call_id, name, stored, error=f"the arguments are not valid JSON: {exc.msg} "
                        f"at line {exc.lineno} column {exc.colno}")
    if not isinstance(args, dict):
        return ToolCall(index, call_id, name, stored, error="the arguments must be a JSON object")
    problem = _argument_error(spec, args)
    if problem:
        return ToolCall(index, call_id, name, stored, error=problem)
    return ToolCall(index, call_id, name, stored, args)


def _argument_error(spec: ToolSpec, args: Mapping[str, Any]) -> str | None:
    for key, (kind, _) in spec.arguments.items():
        if key not in args:
            return f"{spec.name}: missing argument {key!r}"
        value = args[key]
        wanted = _JSON_TYPES.get(kind, (object,))
        if not isinstance(value, wanted) or (kind in ("integer", "number") and isinstance(value, bool)):
            return f"{spec.name}: argument {key!r} must be a {kind}, not {type(value).__name__}"
    extra = sorted(set(args) - set(spec.arguments))
    if extra:
        return f"{spec.name}: unknown argument(s) {', '.join(map(repr, extra))}"
    return None


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def text_calls(text: str, tools: Mapping[str, ToolSpec], max_input_chars: int) -> list[ToolCall]:
    """The text protocol: each fenced block in a tool's language is a call of it."""
    by_fence = {spec.fence: spec for spec in tools.values() if spec.fence}
    calls: list[ToolCall] = []
    for match in _FENCE.finditer(text):
        spec = by_fence.get(match.group(1).lower())
        if spec is None or spec.main_argument is None:
            continue
        body = match.group(2)
        i = len(calls)
        calls.append(_checked(i, f"text-{i}", spec.name, json.dumps({spec.main_argument: body}), tools,
                              max_input_chars)
                     if len(body) <= max_input_chars else
                     ToolCall(i, f"text-{i}", spec.name, body[:max_input_chars],
                              error=f"the block is {len(body):,} characters; the limit is {max_input_chars:,}"))
    return calls


def render_text_results(results: Sequence[tuple[str, int, str]]) -> str:
    """The text protocol's reply: every call's (tool, index, output), in order, as one
    user message."""
    return "\n\n".join(f"Result of {tool} (block {index + 1}):\n{output}" for tool, index, output in results)

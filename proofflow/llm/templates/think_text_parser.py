# mypy: ignore-errors
"""A vLLM reasoning-parser PLUGIN that finds `<think>…</think>` in the TEXT, for models
whose tokenizer has no single token for the tags (SmolLM2, the local test model).

Loaded by the vLLM server process, not by proofflow (it imports vllm, which lives only in
the server's own virtualenv):

    --reasoning-parser-plugin proofflow/llm/templates/think_text_parser.py
    --reasoning-parser think_text

Production reasoning models use vLLM's own parser for their family instead
(`--reasoning-parser deepseek_r1`, `qwen3`, ...; docs/agents.md).

Semantics: text before `</think>` (after an optional `<think>`) is the thinking, the rest
the content. A request with chat_template_kwargs {"enable_thinking": true} was rendered by
templates/hermes_tools.jinja with the think block already opened in the prompt, so an
output without `</think>` is all thinking (Qwen3's convention). Without tags and without
that flag the output is all content. Token counting is not implemented (it returns 0), so
proofflow falls back to counting the returned thinking with /tokenize.
"""

from collections.abc import Sequence

from vllm.entrypoints.generate.base.protocol import DeltaMessage
from vllm.reasoning import ReasoningParser, ReasoningParserManager

OPEN, CLOSE = "<think>", "</think>"


@ReasoningParserManager.register_module("think_text")
class ThinkTextReasoningParser(ReasoningParser):
    @property
    def reasoning_start_str(self) -> str:
        return OPEN

    @property
    def reasoning_end_str(self) -> str:
        return CLOSE

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        # Decides when structured output starts constraining; text tags cannot be seen
        # in single ids, so decode (rare, small outputs in tests).
        return CLOSE in self.model_tokenizer.decode(list(input_ids))

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        return input_ids

    def extract_reasoning(self, model_output, request):
        kwargs = getattr(request, "chat_template_kwargs", None) or {}
        opened = bool(kwargs.get("enable_thinking"))
        text = model_output
        if OPEN in text and (CLOSE not in text or text.index(OPEN) < text.index(CLOSE)):
            before, _, text = text.partition(OPEN)
            opened = True
        else:
            before = ""
        if CLOSE in text:
            thinking, _, content = text.partition(CLOSE)
            return thinking.strip() or None, (before + content).strip() or None
        if opened:
            return text.strip() or None, before.strip() or None
        return None, model_output

    def extract_reasoning_streaming(self, previous_text, current_text, delta_text, previous_token_ids,
                                    current_token_ids, delta_token_ids):
        # proofflow does not stream; a streaming client gets everything as content.
        return DeltaMessage(content=delta_text)

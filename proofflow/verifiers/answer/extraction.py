"""Which final answer a completion commits to.

``extract_answer``: last ``\\boxed{…}``/``\\fbox{…}`` (nested braces) > GSM8K ``#### N`` >
"The (final) answer is …" > last number in the text (an explicit fallback whose use is
recorded as the method; callers can turn it off). ``reference_answer`` reads a reference
that may be a full solution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_answer", "reference_answer"]


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # the raw extracted final answer text, None if nothing found
    method: str  # "boxed" | "answer_is" | "gsm8k_hash" | "last_number" | "none"


_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b\s*")


def _balanced(text: str, open_pos: int) -> str | None:
    """Content of the brace group opening at ``open_pos`` (a ``{``), or None if unclosed."""
    depth = 0
    i = open_pos
    while i < len(text):
        ch = text[i]
        if ch == "\\":  # skip escaped characters such as \{ and \}
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_pos + 1 : i]
        i += 1
    return None


def _last_boxed(text: str) -> str | None:
    found: str | None = None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        if j < len(text) and text[j] == "{":
            inner = _balanced(text, j)
            if inner is not None:
                found = inner
        else:  # "\boxed 5": TeX takes the next token as the argument
            tok = re.match(r"[^\s$\\{}]+", text[j:])
            if tok:
                found = tok.group(0)
    return found


_HASH_RE = re.compile(r"####\s*([^\n]+)")
# "The answer is", "Final answer:", or a line that starts with "Answer:" (not "to answer: ...").
_ANSWER_IS_RE = re.compile(
    r"(?:final\s+answer|the\s+answer|^[\s*#]*answer)\s*\**\s*(?:is|:|=)\s*\**:?\s*([^\n]+)",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")


def _trim_sentence(ans: str) -> str:
    """'$\\frac{1}{2}$.' -> '\\frac{1}{2}': drop markdown bold, math delimiters, final period."""
    ans = ans.strip().strip("*").strip()
    m = re.search(r"\$([^$]+)\$", ans)
    if m:  # an inline-math span holds the answer; surrounding words are prose
        ans = m.group(1)
    else:  # "3.5 cm. Then we check..." -> "3.5 cm": stop at the end of the sentence
        ans = re.split(r"\.\s", ans, maxsplit=1)[0]
    ans = re.sub(r"[\s.]+$", "", ans)  # sentence-final period ("is 5." -> "5"; "5.0" is kept)
    return ans.strip().strip("*").strip()


def extract_answer(text: str) -> Extraction:
    """The final answer a completion commits to, and how it was found."""
    if not text or not text.strip():
        return Extraction(None, "none")
    boxed = _last_boxed(text)
    if boxed is not None and boxed.strip():
        return Extraction(boxed.strip(), "boxed")
    hashes = _HASH_RE.findall(text)
    if hashes:
        ans = _trim_sentence(hashes[-1])
        if ans:
            return Extraction(ans, "gsm8k_hash")
    said = _ANSWER_IS_RE.findall(text)
    if said:
        ans = _trim_sentence(said[-1])
        if ans:
            return Extraction(ans, "answer_is")
    nums = _NUMBER_RE.findall(text)
    if nums:
        return Extraction(nums[-1].replace(" ", ""), "last_number")
    return Extraction(None, "none")


def reference_answer(reference: str) -> str:
    """A reference may be a bare answer or a full solution (GSM8K '#### N', MATH '\\boxed')."""
    if "####" in reference:
        hashes = _HASH_RE.findall(reference)
        if hashes:
            return str(hashes[-1]).strip()
    if "\\boxed" in reference or "\\fbox" in reference:
        boxed = _last_boxed(reference)
        if boxed:
            return boxed.strip()
    return reference.strip()

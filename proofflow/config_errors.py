"""Configuration errors as one line per key, naming where the value came from.

Why: pydantic reports a bad settings value as a multi-line block (the model's name, the
location on one line, the message on the next, a URL), and an unknown key in a section
was silently ignored (`[solve] sampels = 4` ran with the default 4 samples... or not).
Every section now refuses unknown keys (config.ConfigModel, extra="forbid"), and this
module turns pydantic's errors into lines such as

    config.toml: [solve] sampels: unknown key (did you mean "samples"?)
    environment variable PROOFFLOW_SOLVE__SAMPELS: [solve] sampels: unknown key (did you mean "samples"?)

It also finds the PROOFFLOW_* environment variables pydantic-settings ignores: an unknown
section (PROOFFLOW_SOLV__SAMPLES) or a single underscore where two were meant
(PROOFFLOW_SOLVE_SAMPLES). Other PROOFFLOW_* variables (PROOFFLOW_HOME, PROOFFLOW_DB_PATH,
...) are not settings keys and are left alone.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

ENV_PREFIX = "PROOFFLOW_"
ENV_NESTING = "__"

Loc = tuple[str | int, ...]


class ConfigError(ValueError):
    """Bad settings: str() is one line per key (joined by newlines)."""

    def __init__(self, lines: Sequence[str]):
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section a field holds (`X`, `X | None`, `Optional[X]`), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def keys_at(root: type[BaseModel], path: Sequence[str | int]) -> list[str] | None:
    """The valid keys of the section at `path` under `root` (None if `path` is not a section)."""
    model: type[BaseModel] | None = root
    for part in path:
        field = model.model_fields.get(str(part)) if model is not None else None
        model = _model_of(field.annotation) if field is not None else None
        if model is None:
            return None
    return list(model.model_fields) if model is not None else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _section(path: Sequence[str | int]) -> str:
    return f"[{'.'.join(map(str, path))}]" if path else ""


def _message(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    loc: Loc = tuple(error.get("loc", ()))
    if error.get("type") == "extra_forbidden" and loc:
        *parents, key = loc
        valid = keys_at(root, parents) or []
        kind = "unknown section" if not parents else "unknown key"
        where = f"{_section(parents)} {key}" if parents else f"[{key}]"
        return f"{where}: {kind}{did_you_mean(str(key), valid)}"
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if loc:
        *parents, key = loc
        return f"{_section(parents)} {key}: {msg}".lstrip()
    return msg


def describe(exc: ValidationError, root: type[BaseModel], origin: Callable[[Loc], str]) -> list[str]:
    """One line per error: `<origin>: [section] key: what is wrong`."""
    lines = []
    for error in exc.errors():
        line = f"{origin(tuple(error.get('loc', ())))}: {_message(error, root)}"
        if line not in lines:
            lines.append(line)
    return lines


def env_var_for(loc: Loc, environ: Mapping[str, str]) -> str | None:
    """The PROOFFLOW_* variable that set the value at `loc` (or a section holding it), if any."""
    names = {name.upper(): name for name in environ}
    for depth in range(len(loc), 0, -1):
        wanted = ENV_PREFIX + ENV_NESTING.join(str(p) for p in loc[:depth]).upper()
        if wanted in names:
            return names[wanted]
    return None


def in_mapping(loc: Loc, values: Mapping[str, Any]) -> bool:
    node: Any = values
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def unknown_env_vars(environ: Mapping[str, str], root: type[BaseModel]) -> list[str]:
    """Errors for PROOFFLOW_* variables that look like settings keys but name none."""
    sections = list(root.model_fields)
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        rest = upper[len(ENV_PREFIX):].lower()
        head = rest.split(ENV_NESTING, 1)[0]
        if ENV_NESTING in rest and head not in sections:
            lines.append(f"environment variable {name}: [{head}]: unknown section{did_you_mean(head, sections)}")
            continue
        single = next((s for s in sections if rest.startswith(s + "_") and not rest.startswith(s + ENV_NESTING)),
                      None)
        if single is not None and ENV_NESTING not in rest:
            key = rest[len(single) + 1:]
            hint = f"{ENV_PREFIX}{single.upper()}{ENV_NESTING}{key.upper()}"
            valid = keys_at(root, [single]) or []
            known = key in valid
            lines.append(f"environment variable {name}: not a settings key; sections and keys are joined by "
                         f"two underscores (did you mean {hint}?)" if known else
                         f"environment variable {name}: [{single}] {key}: unknown key{did_you_mean(key, valid)}; "
                         "sections and keys are joined by two underscores")
    return lines


T = typing.TypeVar("T")


def origin_finder(config_file: object | None, file_values: Mapping[str, Any], environ: Mapping[str, str],
                  fallback: str) -> Callable[[Loc], str]:
    """Where the value at a location came from: the environment (it overrides the file),
    the config file, or `fallback` (the command line, the defaults)."""
    def origin(loc: Loc) -> str:
        var = env_var_for(loc, environ)
        if var is not None:
            return f"environment variable {var}"
        if config_file is not None and in_mapping(loc, file_values):
            return str(config_file)
        return fallback
    return origin


def validated(build: Callable[[], T], root: type[BaseModel], origin: Callable[[Loc], str]) -> T:
    """`build()`, with pydantic's errors turned into one ConfigError line per key."""
    try:
        return build()
    except ValidationError as exc:
        raise ConfigError(describe(exc, root, origin)) from None


def reject_unknown_env(environ: Mapping[str, str], root: type[BaseModel]) -> None:
    lines = unknown_env_vars(environ, root)
    if lines:
        raise ConfigError(lines)

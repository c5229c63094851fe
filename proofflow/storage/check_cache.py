"""Persistence of the formal checker's VerdictCache (verifiers/formal/cache.py) in DuckDB.

Why: checking a proof costs 0.01–0.5 s warm in Coq and seconds to minutes in Lean; a
rerun, a resumed run or another run that meets the same (header, statement, source)
must not pay it again. The table is keyed exactly like `VerdictCache.key`; its row type,
`CheckCacheRow`, is defined with the other tables' in records.py.

Reads happen once, when a run opens (`load_all`: every entry of this checker version),
because a run never keeps the file open (see db.py); new entries go through the run's
BatchWriter like any other row.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import duckdb

from proofflow.storage.db import Store
from proofflow.storage.records import CheckCacheRow
from proofflow.verifiers.formal import CacheKey, CheckResult, Hole, Message

__all__ = ["CheckCacheRow", "cache_row", "load_all", "result_from_json", "result_to_json"]


def result_to_json(result: CheckResult) -> str:
    return json.dumps(asdict(result), ensure_ascii=False)


def result_from_json(text: str) -> CheckResult:
    d = json.loads(text)
    d["messages"] = [Message(**m) for m in d.get("messages", [])]
    d["holes"] = [Hole(**h) for h in d.get("holes", [])]
    return CheckResult(**d)


def cache_row(key: CacheKey, result: CheckResult) -> CheckCacheRow:
    return CheckCacheRow(checker=key.checker, header_hash=key.header, source_hash=key.source,
                         status=result.status, result=result_to_json(result))


def load_all(store: Store, checker: str) -> dict[CacheKey, CheckResult]:
    """Every cached result of this checker (name + version) in the database."""
    if not store.path.exists():
        return {}
    # Read-only: creating the schema here would race the run's writer thread (DuckDB
    # reports a catalog conflict); a file without the table simply has no entries yet.
    try:
        _, rows = store.query(
            "SELECT header_hash, source_hash, result FROM check_cache WHERE checker = ?", [checker])
    except duckdb.CatalogException:
        return {}
    return {CacheKey(checker, h, s): result_from_json(r) for h, s, r in rows}

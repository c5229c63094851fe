"""What to tell the user when DuckDB's file lock stops us: who holds it, and how.

DuckDB names the holder's pid and program only. Whether that process reads or writes
matters for what the user should do (a forgotten notebook reading the file vs another
run writing it), so it is looked up in /proc: the kind of POSIX lock the holder has on
the file (READ for a read-only open, WRITE for a writer). DuckDB also says "you would be
able to open this database in read-only mode" when the holder only reads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from proofflow.storage.lease import command_of

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<prog>\S+) \(PID (?P<pid>\d+)\)")
_READ_ONLY_HINT = "would be able to open this database in read-only mode"


def holder_mode(pid: int, path: Path) -> str | None:
    """"read" or "write": the lock process `pid` holds on `path`, or None if unknown
    (another user's process, no /proc)."""
    try:
        target = path.resolve()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if Path(os.readlink(f"/proc/{pid}/fd/{fd}")) != target:
                    continue
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            for line in info.splitlines():
                if line.startswith("lock:"):
                    if " WRITE " in line:
                        return "write"
                    if " READ " in line:
                        return "read"
    except OSError:
        return None
    return None


def lock_message(path: Path, exc: BaseException, waited: float) -> str:
    text = str(exc)
    m = _LOCK_RE.search(text)
    if not m:
        return (f"database {path} is locked by another process; waited {waited:.1f}s. "
                "Close the program that has it open, or point --db at another file.")
    pid = int(m["pid"])
    mode = holder_mode(pid, path) or ("read" if _READ_ONLY_HINT in text else None)
    who = f"process {pid} ({command_of(pid) if Path(f'/proc/{pid}').exists() else Path(m['prog']).name})"
    if mode == "read":
        how = (f"{who} has it open read-only (a SQL client, notebook or report reading it); "
               "writes wait until it closes the file")
    elif mode == "write":
        how = f"{who} has it open for writing (another proofflow run or a SQL client)"
    else:
        how = f"{who} has it open"
    return (f"database {path} is locked: {how}; waited {waited:.1f}s. Close it, or point "
            "--db at another file.")

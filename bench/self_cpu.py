"""Run the proofflow CLI in this process and, when it exits, write this process's own CPU
seconds (RUSAGE_SELF: the flow process alone, not the answer checkers or Dask workers it
started) to the file named first. bench_pipeline.py runs each `proofflow solve` this way,
so it can print the flow process's CPU per sample (issue 19's target) beside the tree's.

    python bench/self_cpu.py OUT.txt solve ...   (the arguments of `proofflow`)
"""

from __future__ import annotations

import atexit
import resource
import runpy
import sys
from pathlib import Path


def _write(path: Path) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    path.write_text(f"{usage.ru_utime + usage.ru_stime:.3f}\n")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    sys.argv = ["proofflow", *sys.argv[2:]]
    atexit.register(_write, out)  # after the CLI's own exit work (threads joined, flushes)
    runpy.run_module("proofflow.cli", run_name="__main__", alter_sys=True)

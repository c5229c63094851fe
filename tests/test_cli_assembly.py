"""The command line's assembly: every command module registers, and a missing one is an error."""

from __future__ import annotations

import subprocess
import sys

from proofflow.cli import app


def test_every_command_is_registered() -> None:
    # app.command() without a name registers the function's name.
    names = {cmd.name or getattr(cmd.callback, "__name__", "") for cmd in app.registered_commands}
    assert {"solve", "runs", "show", "demo", "serve", "prove", "report", "export", "sql"} <= names


def test_a_command_module_that_does_not_import_is_an_error() -> None:
    # Skipping it would ship a CLI without, say, `report`, and nobody would notice.
    code = "import sys; sys.modules['proofflow.commands.report'] = None; import proofflow.cli"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr and "proofflow.commands.report" in done.stderr

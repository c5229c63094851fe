#!/usr/bin/env python3
"""STAND-IN for the Lean REPL, for process-handling tests ONLY.

This is not Lean and checks nothing. It speaks leanprover-community/repl's JSON protocol
(one JSON command followed by a blank line in, one JSON answer followed by a blank line
out) so the pool in proofflow/verifiers/lean.py can be tested where no Lean toolchain
exists: timeouts that kill and respawn, a crash mid-check, recycling, header reuse.

Behaviour is driven by markers in the command text:
- a command without "env" is a header: answers a fresh env; appends a line to
  $FAKE_REPL_LOG (so tests can count imports);
- "LOOP" never answers; "CRASH" exits mid-check; "ERROR" answers an error message at
  line 2; "sorry" answers a sorry with a goal; "#print axioms X" answers the axioms
  (X containing "cheat" depends on sorryAx); "#check @X" answers a type, with an extra
  binder when the env's history contains "variable" (to test the elaborated-type check).
"""

import json
import os
import sys
import time

envs = 0
env_text: dict = {}  # env number -> text of the command that produced it


def answer(obj):
    sys.stdout.write(json.dumps(obj, indent=2) + "\n\n")
    sys.stdout.flush()


def main():
    global envs
    buf = ""
    for line in sys.stdin:
        if line.strip():
            buf += line
            continue
        if not buf.strip():
            continue
        cmd, buf = json.loads(buf), ""
        text = cmd["cmd"]
        if "env" not in cmd:
            log = os.environ.get("FAKE_REPL_LOG")
            if log:
                with open(log, "a") as f:
                    f.write(f"{os.getpid()} {text!r}\n")
            answer({"env": envs})
            envs += 1
            continue
        if cmd["env"] >= envs:
            answer({"message": f"unknown environment {cmd['env']}"})
            continue
        if "LOOP" in text:
            time.sleep(3600)
        if "CRASH" in text:
            os._exit(3)
        result = {"env": envs}
        env_text[envs] = env_text.get(cmd["env"], "") + "\n" + text
        envs += 1
        if "#check @" in text:
            name = text.split("#check @")[-1].strip()
            typ = "∀ (x : Real), x = 2"
            if "variable" in env_text.get(cmd["env"], ""):
                typ = "∀ (cheat : False) (x : Real), x = 2"
            result["messages"] = [{"severity": "info", "pos": {"line": 2, "column": 0}, "endPos": None,
                                   "data": f"@{name} : {typ}"}]
        elif text.startswith("#print axioms"):
            name = text.split()[-1]
            if "cheat" in name:
                result["messages"] = [{"severity": "info", "pos": {"line": 1, "column": 0}, "endPos": None,
                                       "data": f"'{name}' depends on axioms: [propext, sorryAx]"}]
            else:
                result["messages"] = [{"severity": "info", "pos": {"line": 1, "column": 0}, "endPos": None,
                                       "data": f"'{name}' depends on axioms: [propext, Classical.choice, Quot.sound]"}]
        elif "ERROR" in text:
            result["messages"] = [{"severity": "error", "pos": {"line": 2, "column": 2},
                                   "endPos": {"line": 2, "column": 7}, "data": "unknown tactic"}]
        elif "sorry" in text:
            result["sorries"] = [{"pos": {"line": 2, "column": 2}, "endPos": {"line": 2, "column": 7},
                                  "goal": "x : ℝ\n⊢ x = 2", "proofState": 0}]
            result["messages"] = [{"severity": "warning", "pos": {"line": 1, "column": 8},
                                   "endPos": {"line": 1, "column": 11}, "data": "declaration uses 'sorry'"}]
        answer(result)


if __name__ == "__main__":
    main()

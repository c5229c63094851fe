"""Convert a GGUF checkpoint into a bf16 safetensors folder that vLLM's CPU build can load.

Run this file with the model server's own virtualenv python (it needs torch and
transformers, which the main proofflow environment deliberately does not import):

    VENV/bin/python -m proofflow.llm.convert_gguf --gguf FILE.gguf --out DIR

or by path (`VENV/bin/python .../convert_gguf.py ...`), which is how `install.setup()`
runs it, so the venv does not need proofflow installed. It only uses the standard
library at import time; torch/transformers are imported inside `convert()`.

Why the detour: vLLM's CPU build cannot load GGUF, and transformers' GGUF loader
dequantizes into a model whose config still carries a `quantization_config`, which
vLLM would then try to honour. So we load, drop that entry, copy the weights into a
plain model built `from_config`, and save that (plus the tokenizer, so the chat
template travels with the model).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

MARKER_NAME = ".proofflow-converted.json"


def convert(gguf_path: Path, out_dir: Path) -> dict[str, object]:
    """Write a bf16 safetensors model + tokenizer to `out_dir`; return marker contents."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    src_dir, gguf_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=gguf_name)
    loaded = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=gguf_name, torch_dtype=torch.bfloat16
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        # vLLM would read this and look for a GGUF/quantized loader it does not have.
        del config.quantization_config
    config.torch_dtype = torch.bfloat16
    plain = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings may show up as "missing" lm_head; anything else means a bad copy.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")

    # Write into a sibling temp folder and rename, so a crash never leaves a folder that
    # looks complete; the marker is written last for the same reason.
    tmp_dir = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    plain.save_pretrained(tmp_dir, safe_serialization=True)
    tokenizer.save_pretrained(tmp_dir)
    if not getattr(tokenizer, "chat_template", None):
        raise RuntimeError("the converted tokenizer has no chat template")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_dir.rename(out_dir)

    marker: dict[str, object] = {
        "source": str(gguf_path),
        "source_size": gguf_path.stat().st_size,
        "dtype": "bfloat16",
        "parameters": sum(p.numel() for p in plain.parameters()),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2))
    return marker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True, help="the .gguf file")
    parser.add_argument("--out", type=Path, required=True, help="output model folder")
    args = parser.parse_args(argv)
    if not args.gguf.is_file():
        parser.error(f"no such file: {args.gguf}")
    marker = convert(args.gguf.resolve(), args.out.resolve())
    print(json.dumps(marker))
    return 0


if __name__ == "__main__":
    sys.exit(main())

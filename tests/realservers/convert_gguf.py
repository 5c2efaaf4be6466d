"""Convert the Gemma 3 270M GGUF to a bf16 safetensors directory vLLM can load.

    VLLM_VENV/bin/python convert_gguf.py MODEL.gguf OUT_DIR CHAT_TEMPLATE.jinja

Run by install.py with the vLLM venv's Python (transformers, torch, gguf, accelerate);
standalone on purpose: it imports nothing from the project. Writes OUT_DIR.tmp and
renames it to OUT_DIR only when everything is saved, so an interruption leaves no
half-written model behind. Offline: nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def main(gguf: str, out: str, template: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(gguf)
    final = Path(out)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)

    # transformers dequantizes the GGUF (Q4_K_M) to float weights as it loads it.
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name)
    tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    # Saved as plain weights: no quantizer, no quantization_config (vLLM would look for
    # a GGUF loader otherwise).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.bfloat16)
    model.config.torch_dtype = torch.bfloat16

    chat_template = Path(template).read_text()
    tokenizer.chat_template = chat_template
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    # vLLM gets it with --chat-template; written here whatever save_pretrained did with it.
    (tmp / "chat_template.jinja").write_text(chat_template)

    if not any(tmp.glob("*.safetensors")):
        raise SystemExit(f"no safetensors written in {tmp}")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
    print(f"converted {src.name} -> {final} ({size / 1e6:.0f} MB, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, bf16)")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    main(*sys.argv[1:])

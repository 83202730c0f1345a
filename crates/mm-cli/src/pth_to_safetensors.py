"""Convert a PyTorch checkpoint (.pth/.pt state dict) to safetensors; run by `mm vision convert`.

usage: python pth_to_safetensors.py IN OUT

Accepts a bare state dict or one wrapped under "state_dict", "model" or "model_state_dict"
(as training scripts save them), strips DataParallel's "module." prefix, keeps tensors only,
and writes OUT atomically. Prints a JSON summary on stdout.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file


def main():
    src, dst = sys.argv[1], sys.argv[2]
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # a file torch cannot read: one line, not a traceback
        sys.exit(f"{src}: not a PyTorch checkpoint that torch.load reads with weights_only=True "
                 f"({type(e).__name__}: {e})")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        sys.exit(f"{src}: expected a state dict (a dict of tensors), found {type(obj).__name__}")
    tensors, skipped = {}, []
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            skipped.append(k)
            continue
        if k.startswith("module."):
            k = k[len("module."):]
        tensors[k] = v.detach().contiguous()
    if not tensors:
        sys.exit(f"{src}: the state dict holds no tensors")
    tmp = dst + ".tmp"
    save_file(tensors, tmp)
    os.replace(tmp, dst)
    print(json.dumps({"tensors": len(tensors), "skipped": skipped}))


if __name__ == "__main__":
    main()

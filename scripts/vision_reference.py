#!/usr/bin/env python3
"""Reference weights and outputs for mm-vision's torchvision parity tests.

For each architecture: a seeded, randomly initialised torchvision 0.26 model whose batch-norm
running statistics are calibrated on a few seeded random batches (so that eval-mode activations
stay O(1) through 100 layers), saved as safetensors with torchvision's state-dict names, and its
eval-mode outputs on a fixed input: the feature map after every stage mm-vision exposes, the
pooled vector, the class logits (and VGG's fc7).

    python scripts/vision_reference.py --out DIR [--arch resnet18 ...] [--dtype float16]

writes DIR/<arch>.safetensors, DIR/<arch>.outputs.safetensors and DIR/manifest.json. The
weights are large (VGG ~550 MB each in float32), so tests generate them into target/ one
architecture at a time and delete them after the check rather than commit them. With
`--dtype float16` every floating-point weight and buffer is rounded to float16 *before* the
outputs are computed (in float32), and the file stores float16: half the disk, the same check,
and it exercises the loader's dtype conversion. Needs torch 2.11.0, torchvision 0.26.0 and
safetensors (installed by `cargo xtask setup`).
"""

import argparse
import hashlib
import json
import os
import sys

import torch
import torchvision
from safetensors.torch import save_file

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
INPUT_SHAPE = (2, 3, 64, 64)


def calibrate(model, seed):
    """Running statistics = the exact average over three random batches."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64, generator=g))
    for m in bns:
        m.momentum = 0.1


def resnet_outputs(m, x):
    out = {}
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    out["stem"] = h
    for name in ["layer1", "layer2", "layer3", "layer4"]:
        h = getattr(m, name)(h)
        out[name] = h
    out["pooled"] = torch.flatten(m.avgpool(h), 1)
    out["logits"] = m(x)
    return out


def vgg_outputs(m, x):
    out = {}
    h, block = x, 1
    for layer in m.features:
        if isinstance(layer, torch.nn.MaxPool2d):
            out[f"block{block}"] = h
            block += 1
        h = layer(h)
    out["pool5"] = h
    out["pooled"] = h.mean(dim=(2, 3))
    flat = torch.flatten(m.avgpool(h), 1)
    out["fc7"] = m.classifier[:5](flat)
    out["logits"] = m(x)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", nargs="*", default=ARCHS, choices=ARCHS)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                    help="storage dtype of the weights file (outputs are always float32)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    x = torch.randn(*INPUT_SHAPE, generator=torch.Generator().manual_seed(1234))
    for arch in args.arch:
        i = ARCHS.index(arch)  # seeds depend on the architecture, not on the selection
        torch.manual_seed(100 + i)
        model = getattr(torchvision.models, arch)(weights=None)
        calibrate(model, 200 + i)
        if args.dtype == "float16":
            model.half().float()  # the stored values, so the outputs are theirs
        model.eval()
        with torch.no_grad():
            outs = (resnet_outputs if arch.startswith("resnet") else vgg_outputs)(model, x)
        outs = {k: v.contiguous() for k, v in outs.items()}
        outs["input"] = x.contiguous()
        state = {
            k: (v.half() if args.dtype == "float16" and v.is_floating_point() else v).contiguous()
            for k, v in model.state_dict().items()
        }
        save_file(state, os.path.join(args.out, f"{arch}.safetensors"))
        save_file(outs, os.path.join(args.out, f"{arch}.outputs.safetensors"))
        scale = {k: float(v.abs().max()) for k, v in outs.items()}
        print(f"{arch}: {sum(v.numel() for v in state.values()):,} weights; max |out| {scale}",
              file=sys.stderr)
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    manifest = {
        "script_sha256": digest,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "archs": args.arch,
        "dtype": args.dtype,
        "input_shape": list(INPUT_SHAPE),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side benchmark: torchvision (PyTorch) vs mm-vision backbone forwards.

    cargo build --release -p mm-benches --bin vision-workloads
    MM_VISION_BENCH=target/release/vision-workloads \
        /opt/venv-torch-2.11.0/bin/python scripts/bench_vision.py [--threads 2] [--batch 8]
        [--archs resnet18,resnet50,vgg16] [--repeat 10] [--device cpu|cuda] [--train]
        [--autocast off|bf16|fp16]

Same model (torchvision's constructor; ours builds the same graph), same input shape
[batch, 3, 224, 224], same thread count (torch.set_num_threads / tch::set_num_threads),
eval mode without autograd (or, with --train, training mode forward + backward of a
cross-entropy loss on the logits), optionally under torch.autocast(device, dtype) on both
sides (--autocast bf16: the issue's ResNet-50 training comparison). Each side warms up for 0.5 s, then times --repeat batches;
the table reports medians and ours/PyTorch. The two sides run one after the other, in
alternating order per architecture, so neither always gets the cooler machine. Without
$MM_VISION_BENCH the mm column is skipped.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

try:
    import torchvision
except ImportError:  # e.g. a GPU machine with torch only: a faithful ResNet, no VGG
    torchvision = None


def _resnet(depths, bottleneck):
    """torchvision's ResNet (v1.5) built from torch.nn, for machines without torchvision."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            exp = 4 if bottleneck else 1
            if bottleneck:
                shapes = [(cin, width, 1, 1), (width, width, 3, stride), (width, width * 4, 1, 1)]
            else:
                shapes = [(cin, width, 3, stride), (width, width, 3, 1)]
            self.convs = nn.ModuleList(
                nn.Conv2d(a, b, k, s, k // 2, bias=False) for a, b, k, s in shapes)
            self.bns = nn.ModuleList(nn.BatchNorm2d(b) for _, b, _, _ in shapes)
            self.down = None
            if stride != 1 or cin != width * exp:
                self.down = nn.Sequential(nn.Conv2d(cin, width * exp, 1, stride, bias=False),
                                          nn.BatchNorm2d(width * exp))

        def forward(self, x):
            h = x
            for i, (c, b) in enumerate(zip(self.convs, self.bns)):
                h = b(c(h))
                if i < len(self.convs) - 1:
                    h = torch.relu(h)
            return torch.relu(h + (self.down(x) if self.down is not None else x))

    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.MaxPool2d(3, 2, 1)], 64
    for i, d in enumerate(depths):
        for j in range(d):
            layers.append(Block(cin, 64 << i, 2 if j == 0 and i > 0 else 1))
            cin = (64 << i) * (4 if bottleneck else 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000)]
    return nn.Sequential(*layers)


def build(arch):
    if torchvision is not None:
        return getattr(torchvision.models, arch)(weights=None)
    specs = {"resnet18": ([2, 2, 2, 2], False), "resnet34": ([3, 4, 6, 3], False),
             "resnet50": ([3, 4, 6, 3], True), "resnet101": ([3, 4, 23, 3], True)}
    if arch not in specs:
        sys.exit(f"{arch} needs torchvision, which is not installed")
    return _resnet(*specs[arch])


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def torch_time(arch, batch, size, repeat, device, train, autocast="off"):
    torch.manual_seed(0)
    model = build(arch).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    model.train(train)

    def step():
        with torch.autocast(device, dtype=DTYPES.get(autocast, torch.float32),
                            enabled=autocast != "off"):
            if train:
                model.zero_grad(set_to_none=False)
                torch.nn.functional.cross_entropy(model(x), labels).backward()
            else:
                with torch.no_grad():
                    model(x)
        if device == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]


def mm_time(binary, arch, batch, size, threads, repeat, device, train, autocast="off"):
    cmd = [binary, "--arch", arch, "--batch", str(batch), "--size", str(size),
           "--threads", str(threads), "--repeat", str(repeat), "--device", device,
           "--autocast", autocast]
    if train:
        cmd.append("--train")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--archs", default="resnet18,resnet50,vgg16")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--autocast", default="off", choices=["off", "bf16", "fp16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    binary = os.environ.get("MM_VISION_BENCH")
    if binary and not os.path.exists(binary):
        print(f"note: MM_VISION_BENCH={binary} does not exist; mm column skipped", file=sys.stderr)
        binary = None
    mode = "forward+backward (train)" if args.train else "forward (eval, no grad)"
    if args.autocast != "off":
        mode += f", {args.autocast} autocast"
    print(f"# {mode}, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads, "
          f"{args.device}, median of {args.repeat}; torch {torch.__version__}, "
          f"torchvision {torchvision.__version__ if torchvision else 'absent (built-in ResNet)'}")
    print(f"{'arch':<10} {'pytorch ms':>11} {'mm ms':>9} {'mm/pytorch':>11}")
    rows = []
    for i, arch in enumerate(args.archs.split(",")):
        order = ["torch", "mm"] if i % 2 == 0 else ["mm", "torch"]
        res = {}
        for side in order:
            if side == "torch":
                res["torch"] = torch_time(arch, args.batch, args.size, args.repeat, args.device,
                                          args.train, args.autocast)
            elif binary:
                res["mm"] = mm_time(binary, arch, args.batch, args.size, args.threads,
                                    args.repeat, args.device, args.train, args.autocast)
        ratio = res["mm"] / res["torch"] if "mm" in res else None
        rows.append({"arch": arch, **res, "ratio": ratio})
        mm_s = f"{res['mm']:9.1f}" if "mm" in res else f"{'-':>9}"
        r_s = f"{ratio:11.3f}" if ratio else f"{'-':>11}"
        print(f"{arch:<10} {res['torch']:11.1f} {mm_s} {r_s}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

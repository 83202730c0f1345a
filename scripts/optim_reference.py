#!/usr/bin/env python3
"""Reference trajectories of torch.optim for mm-train's optimizer tests.

    /opt/venv-torch-2.11.0/bin/python scripts/optim_reference.py \
        > crates/mm-train/tests/fixtures/optim.json

For each optimizer configuration: a seeded 3x4 parameter, five seeded gradients, a learning
rate per step (changing, as a schedule would set it), and the parameter after every step; plus
clip_grad_norm_ on two gradients. float64 throughout, so the comparison is exact to ~1e-12.
"""
import json

import torch

CONFIGS = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "weight_decay": 0.01}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adam", {}),
    ("adam", {"weight_decay": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adamw", {"weight_decay": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.5, "weight_decay": 0.01, "alpha": 0.9}),
]
CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop}
LRS = [0.1, 0.05, 0.05, 0.02, 0.01]


def main():
    g = torch.Generator().manual_seed(0)
    init = torch.randn(3, 4, generator=g, dtype=torch.float64)
    grads = [torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in LRS]
    cases = []
    for kind, kw in CONFIGS:
        p = torch.nn.Parameter(init.clone())
        opt = CLASSES[kind]([p], lr=LRS[0], **kw)
        traj = []
        for lr, gr in zip(LRS, grads):
            for group in opt.param_groups:
                group["lr"] = lr
            p.grad = gr.clone()
            opt.step()
            traj.append(p.detach().flatten().tolist())
        cfg = {"kind": kind, "lr": LRS[0], **{k: list(v) if isinstance(v, tuple) else v
                                              for k, v in kw.items()}}
        cases.append({"config": cfg, "trajectory": traj})
    a = torch.nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    a.grad, b.grad = grads[0].clone(), torch.arange(5, dtype=torch.float64)
    norm = torch.nn.utils.clip_grad_norm_([a, b], 1.5)
    clip = {"max_norm": 1.5, "norm": float(norm), "a": a.grad.flatten().tolist(),
            "b": b.grad.tolist()}
    print(json.dumps({"torch": torch.__version__, "init": init.flatten().tolist(),
                      "grads": [x.flatten().tolist() for x in grads], "lrs": LRS,
                      "cases": cases, "clip": clip}))


if __name__ == "__main__":
    main()

"""Shared pieces of the side-by-side training benchmarks (bench_retrieval.py, bench_vqa.py,
bench_captioning.py): reading mm HDF5 files with h5py, running `mm train` for its
samples/s, and the alternating PyTorch/mm loop that prints the table."""

import json
import os
import subprocess
import tempfile

import numpy as np


def read_params(f):
    """The data set's `meta.params` (a JSON attribute)."""
    p = f["meta"].attrs["params"]
    return json.loads(p if isinstance(p, str) else p.decode())


def ragged(f, name, rows):
    """Per sample in `rows`, its sequences of ragged field `name` as int64 arrays."""
    g = f[f"samples/{name}"]
    v, o, first = g["values"][:], g["offsets"][:], g["first"][:]
    return [[v[o[k]:o[k + 1]].astype(np.int64) for k in range(first[i], first[i + 1])] for i in rows]


def read_train(path, *fields):
    """The training split of the mm HDF5 file at `path`: its images `[N, H, W, 3]`, the data
    set's params, and per ragged field named in `fields`, its sequences per image."""
    import h5py

    with h5py.File(path, "r") as f:
        train = np.sort(f["splits/train"][:])
        images = f["samples/image"][:][train]
        return images, read_params(f), [ragged(f, name, train) for name in fields]


def mm_samples_per_sec(binary, task, data, steps, threads, device, sets=()):
    """Runs `mm train TASK` for `steps` full batches and returns its summary's samples/s."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [binary, "train", task, "--data", data, "--out", os.path.join(d, "run"), "--device", device,
               "--quiet", "--set", f"train.max_steps={steps}", "--set", "train.epochs=0",
               "--set", "train.drop_last=true", "--set", f"train.eval_every={steps}"]
        for s in sets:
            cmd += ["--set", s]
        env = dict(os.environ, MM_LOG="warn", OMP_NUM_THREADS=str(threads))
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        with open(os.path.join(d, "run", "summary.json")) as f:
            return json.load(f)["summary"]["samples_per_sec"]


def alternate(repeat, torch_fn, mm_fn=None):
    """`repeat` rounds of PyTorch and mm (order alternating per round); prints and returns rows."""
    rows = []
    for r in range(repeat):
        res = {}
        for side in (["torch", "mm"] if r % 2 == 0 else ["mm", "torch"]):
            if side == "torch":
                res["torch"] = torch_fn()
            elif mm_fn is not None:
                res["mm"] = mm_fn()
        ratio = res["mm"] / res["torch"] if "mm" in res else None
        rows.append({**res, "mm/torch": ratio})
        print(f"run {r}: pytorch {res['torch']:.0f} samples/s"
              + (f", mm {res['mm']:.0f} samples/s, mm/pytorch {ratio:.3f}" if ratio else ""), flush=True)
    print(json.dumps(rows))
    return rows


def parse_args(default_steps):
    """The flags every side-by-side training benchmark takes."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synthav.h5")
    ap.add_argument("--mm")
    ap.add_argument("--steps", type=int, default=default_steps)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=2)
    return ap.parse_args()


def pad(seqs):
    """int64 sequences -> (zero-padded ids [N, max_len], lengths [N])."""
    import torch

    lens = torch.tensor([len(s) for s in seqs])
    ids = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
    for k, s in enumerate(seqs):
        ids[k, :len(s)] = torch.from_numpy(s)
    return ids, lens


def timed_training(model, opt, loss_fn, n, batch, steps, warm, clip, device, rng):
    """Samples/s of `steps` training steps after `warm` untimed ones, on shuffled full batches
    of example indices `0..n` (reshuffled when a pass ends): `loss_fn(idx)` builds the batch
    and returns the loss (batch assembly is timed); then zero_grad, backward, clipping at
    `clip`, the optimizer step, and a sync so that GPU time is counted."""
    import time

    import torch

    model.train()
    order, pos, done, busy = rng.permutation(n), 0, 0, 0.0
    for step in range(steps + warm):
        if pos + batch > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch]
        pos += batch
        t0 = time.perf_counter()
        loss = loss_fn(idx)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        loss.item()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= warm:
            busy += time.perf_counter() - t0
            done += len(idx)
    return done / busy

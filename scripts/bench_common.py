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

"""Shared pieces of the side-by-side training benchmarks (bench_retrieval.py, bench_vqa.py,
bench_captioning.py): reading mm HDF5 files with h5py, running `mm train` for its
samples/s, and the alternating PyTorch/mm loop that prints the table.

On CUDA the loop also reports each side's GPU busy time: NVML's utilisation (the share of
time in which a kernel ran, as `nvidia-smi` shows it), polled every 20 ms in a thread and
averaged over the timed steps only (mm's summary.json gives their wall-clock window). NVML
reports it over its own sample period (1/6 s to 1 s), so windows of a few seconds or more are
needed; 100 % minus it is the time the GPU waited for the host between and within steps."""

import ctypes
import json
import os
import subprocess
import tempfile
import threading
import time
from collections import namedtuple

import numpy as np

# samples/s of the timed steps, and their wall-clock (start, end) in Unix seconds
Timed = namedtuple("Timed", "samples_per_sec window")


class GpuBusy:
    """Polls NVML's GPU utilisation of device 0 in a thread; `mean(window)` averages the
    samples taken inside `window` (first sample period skipped). Without NVML (no driver,
    no GPU) it records nothing and `mean` is None."""

    def __init__(self, period=0.02):
        self.period, self.samples, self.error = period, [], None
        self._stop = threading.Event()
        try:
            self._nvml = ctypes.CDLL("libnvidia-ml.so.1")
            if self._nvml.nvmlInit_v2() != 0:
                raise OSError("nvmlInit_v2 failed")
            self._dev = ctypes.c_void_p()
            if self._nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self._dev)) != 0:
                raise OSError("nvmlDeviceGetHandleByIndex_v2(0) failed")
        except OSError as e:
            self._nvml, self.error = None, str(e)

    def _poll(self):
        rates = (ctypes.c_uint * 2)()  # nvmlUtilization_t: gpu, memory (percent)
        while not self._stop.is_set():
            if self._nvml.nvmlDeviceGetUtilizationRates(self._dev, rates) == 0:
                self.samples.append((time.time(), rates[0]))
            time.sleep(self.period)

    def __enter__(self):
        if self._nvml is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._nvml is not None:
            self._stop.set()
            self._thread.join()
        return False

    def mean(self, window, lag=0.2):
        """Mean utilisation (percent) of the samples in `window` after its first `lag` s."""
        if window is None:
            return None
        inside = [u for t, u in self.samples if window[0] + lag <= t <= window[1]]
        return sum(inside) / len(inside) if inside else None


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
    """Runs `mm train TASK` for `steps` full batches; returns its summary's samples/s and
    timed window as a `Timed`."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [binary, "train", task, "--data", data, "--out", os.path.join(d, "run"), "--device", device,
               "--quiet", "--set", f"train.max_steps={steps}", "--set", "train.epochs=0",
               "--set", "train.drop_last=true", "--set", f"train.eval_every={steps}"]
        for s in sets:
            cmd += ["--set", s]
        env = dict(os.environ, MM_LOG="warn", OMP_NUM_THREADS=str(threads))
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        with open(os.path.join(d, "run", "summary.json")) as f:
            s = json.load(f)["summary"]
            return Timed(s["samples_per_sec"], s.get("timed_window"))


def alternate(repeat, torch_fn, mm_fn=None, device="cpu"):
    """`repeat` rounds of PyTorch and mm (order alternating per round); each function returns
    a `Timed`. Prints and returns the rows, with each side's GPU busy percentage on CUDA."""
    rows = []
    for r in range(repeat):
        res = {}
        for side in (["torch", "mm"] if r % 2 == 0 else ["mm", "torch"]):
            fn = torch_fn if side == "torch" else mm_fn
            if fn is None:
                continue
            if device == "cuda":
                with GpuBusy() as busy:
                    t = fn()
                res[f"{side}_gpu_busy"] = busy.mean(t.window)
                if busy.error:
                    res["gpu_busy_error"] = busy.error
            else:
                t = fn()
            res[side] = t.samples_per_sec
        ratio = res["mm"] / res["torch"] if "mm" in res else None
        rows.append({**res, "mm/torch": ratio})

        def busy(side):
            b = res.get(f"{side}_gpu_busy")
            return f" (GPU busy {b:.1f} %)" if b is not None else ""

        print(f"run {r}: pytorch {res['torch']:.0f} samples/s{busy('torch')}"
              + (f", mm {res['mm']:.0f} samples/s{busy('mm')}, mm/pytorch {ratio:.3f}" if ratio else ""),
              flush=True)
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
    `clip`, the optimizer step, and a sync so that GPU time is counted. Returns a `Timed`."""
    import torch

    model.train()
    order, pos, done, busy, start = rng.permutation(n), 0, 0, 0.0, None
    for step in range(steps + warm):
        if pos + batch > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch]
        pos += batch
        wall, t0 = time.time(), time.perf_counter()
        loss = loss_fn(idx)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        loss.item()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= warm:
            dt = time.perf_counter() - t0
            busy += dt
            done += len(idx)
            start = wall if start is None else start
            end = wall + dt
    return Timed(done / busy, (start, end) if start is not None else None)

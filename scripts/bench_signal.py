#!/usr/bin/env python3
"""Side-by-side benchmark: librosa vs torchaudio (CPU) vs mm-signal (ours).

Usage (reference venv, see scripts/requirements-ref.txt):

    /opt/venv-mm-ref/bin/python scripts/bench_signal.py [--quick] \
        [--threads 1,2] [--repeat N] [--out results.json]

For numbers worth quoting, build our tool first and run with the OpenBLAS
overrides removed (OpenBLAS reads them when it loads, so they must be unset in
the command itself, not by this script):

    cargo build --release -p mm-benches --bin signal-workloads
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        MM_SIGNAL_BENCH=target/release/signal-workloads \
        /opt/venv-mm-ref/bin/python scripts/bench_signal.py --out bench-signal.json

Workloads (constants W1 / W2 below; --quick shrinks them to a smoke test):

  W1 "music clip": one 30 s mono float32 clip at 22050 Hz (harmonic tones
     with vibrato + white noise, seed 0).  Chain:
     stft(n_fft=2048, hop=512, hann, center=True, constant padding)
     -> power = |X|**2 -> mel (128 bands, Slaney scale and norm)
     -> power_to_db (ref=1, amin=1e-10, top_db=80) -> mfcc (20, DCT-II ortho).
     Each stage is timed on its own (input = previous stage's output) and the
     whole chain is timed in one go.
  W2 "speech batch": 256 clips x 10 s float32 at 16 kHz (noise + tones, a
     random per-clip gain and a silent gap, seed 1).  Log-mel:
     n_fft=512, win_length=400, hop=160, 80 mels in [0, 8000] Hz, Slaney,
     power_to_db defaults (per clip top_db).  Reports total time and clips/s.

Implementations:

  librosa     W1 stage by stage; W2 one clip at a time (a Python loop).  For
              T > 1, W2 is split across a multiprocessing Pool(T) (spawn; each
              worker single-threaded; results are pickled back to the parent,
              which is counted).  librosa's W1 chain is single-threaded: it is
              measured once (BLAS limited to 1 thread) and reused for every T.
  torchaudio  CPU, torch.inference_mode(), transforms configured to match
              librosa (pad_mode='constant', norm='slaney', mel_scale='slaney',
              periodic Hann).  W2 runs as one batched tensor [clips, samples];
              AmplitudeToDB gets a 4-D [clips, 1, mels, frames] tensor so that
              top_db is applied per clip (a 3-D input is treated as
              (channel, freq, time) and would use ONE cut-off for the batch).
  mm (ours)   The binary named by $MM_SIGNAL_BENCH (normally
              target/release/signal-workloads).  Skipped with a note when unset
              or missing.  The script writes the inputs as .npy into a temp dir
              (W1: float32 [samples]; W2: float32 [clips, samples]) and runs
                $MM_SIGNAL_BENCH --workload w1|w2 --input PATH.npy \
                                 --threads T --repeat N
              which must print one JSON line on stdout (other lines ignored):
                w1: {"workload":"w1","threads":T,"repeat":N,
                     "stages_ms":{"stft":..,"power":..,"mel":..,"db":..,
                                  "mfcc":..},
                     "chain_ms":..,"fft_floor_ms":..}
                w2: {"workload":"w2","threads":T,"repeat":N,"total_ms":..,
                     "clips_per_s":..,"fft_floor_ms":..}
              All times are best-of-N wall milliseconds.  The "FFT floor" row
              comes from that tool's fft_floor_ms.

Threads: for each T in --threads: torch.set_num_threads(T) and every
threadpool threadpoolctl knows (numpy's OpenBLAS, torch's OpenMP) limited to T.

Timing: one warm-up call, then the best of --repeat calls (time.perf_counter).
Ratios are time ratios: "librosa / mm" = 3.0 means mm takes a third of the time.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as _md
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# --------------------------------------------------------------------------
# Workloads (the one place their parameters live)
# --------------------------------------------------------------------------

W1 = {
    "key": "w1",
    "name": "music clip",
    "sr": 22050,
    "seconds": 30.0,
    "quick_seconds": 3.0,
    "seed": 0,
    "noise_std": 0.01,
    "n_fft": 2048,
    "hop_length": 512,
    "window": "hann",
    "center": True,
    "pad_mode": "constant",
    "n_mels": 128,
    "n_mfcc": 20,
    "top_db": 80.0,
}

W2 = {
    "key": "w2",
    "name": "speech batch",
    "sr": 16000,
    "clips": 256,
    "seconds": 10.0,
    "quick_clips": 16,
    "quick_seconds": 2.0,
    "seed": 1,
    "noise_std": 0.01,
    "gain_db_range": (-40.0, 0.0),  # per-clip gain, uniform in dB
    "gap_fraction": 0.1,  # one silent (exactly zero) stretch per clip
    "n_fft": 512,
    "win_length": 400,
    "hop_length": 160,
    "window": "hann",
    "center": True,
    "pad_mode": "constant",
    "n_mels": 80,
    "fmin": 0.0,
    "fmax": 8000.0,
    "top_db": 80.0,
}

W1_STAGES = ("stft", "power", "mel", "db", "mfcc")
MM_ENV = "MM_SIGNAL_BENCH"
MM_TIMEOUT_S = 1800


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def make_w1(seconds: float) -> np.ndarray:
    """A few harmonic tones with vibrato, peak 0.5, plus white noise."""
    sr = W1["sr"]
    n = int(round(seconds * sr))
    t = np.arange(n, dtype=np.float64) / sr
    rng = np.random.default_rng(W1["seed"])
    y = np.zeros(n, dtype=np.float64)
    # (f0 Hz, amplitude, vibrato rate Hz)
    for f0, amp, vib_hz in ((220.0, 0.30, 5.0), (277.18, 0.20, 5.5),
                            (329.63, 0.20, 6.0), (440.0, 0.15, 6.5)):
        inst_f = f0 * (1.0 + 0.01 * np.sin(2 * np.pi * vib_hz * t))
        phase = 2 * np.pi * np.cumsum(inst_f) / sr
        for h in range(1, 7):
            y += (amp / h) * np.sin(h * phase)
    y *= 0.5 / np.max(np.abs(y))
    y += W1["noise_std"] * rng.standard_normal(n)
    return y.astype(np.float32)


def make_w2(clips: int, seconds: float) -> np.ndarray:
    """Noise + three tones per clip, a random gain and one silent gap."""
    sr = W2["sr"]
    n = int(round(seconds * sr))
    t = np.arange(n, dtype=np.float64) / sr
    rng = np.random.default_rng(W2["seed"])
    out = np.empty((clips, n), dtype=np.float32)
    gap = int(W2["gap_fraction"] * n)
    lo, hi = W2["gain_db_range"]
    for i in range(clips):
        x = W2["noise_std"] * rng.standard_normal(n)
        for _ in range(3):
            f = rng.uniform(100.0, 3000.0)
            a = rng.uniform(0.05, 0.3)
            x += a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        x *= 10.0 ** (rng.uniform(lo, hi) / 20.0)
        start = int(rng.integers(0, n - gap + 1))
        x[start:start + gap] = 0.0
        out[i] = x
    return out


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def best_of(fn, repeat: int, warmup=None):
    """Warm up (with `warmup` if given, else `fn`), then best of `repeat` calls.

    Returns (best wall time in ms, output of the last call)."""
    (warmup or fn)()
    best = math.inf
    out = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3, out


def set_threads(n: int) -> None:
    from threadpoolctl import threadpool_limits

    import torch

    torch.set_num_threads(n)
    threadpool_limits(limits=n)  # global, stays until changed


def version(pkg: str) -> str:
    try:
        return _md.version(pkg)
    except _md.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt(x, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if unit == "x":
        return f"{x:.2f}x"
    if x >= 100:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def table(header, rows) -> str:
    """rows: list of (label, [cell str...]); a None row prints a rule."""
    widths = [max(len(header[0]), *(len(r[0]) for r in rows if r))]
    for j in range(1, len(header)):
        widths.append(max(len(header[j]), *(len(r[1][j - 1]) for r in rows if r)))
    lines = ["  ".join([header[0].ljust(widths[0])]
                       + [h.rjust(w) for h, w in zip(header[1:], widths[1:])])]
    lines.append("-" * len(lines[0]))
    for r in rows:
        if r is None:
            lines.append("-" * len(lines[0]))
            continue
        lines.append("  ".join([r[0].ljust(widths[0])]
                               + [c.rjust(w) for c, w in zip(r[1], widths[1:])]))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# librosa
# --------------------------------------------------------------------------


def librosa_w1(y: np.ndarray, repeat: int) -> dict:
    import librosa

    p = W1

    def stft():
        return librosa.stft(y, n_fft=p["n_fft"], hop_length=p["hop_length"],
                            window=p["window"], center=p["center"],
                            pad_mode=p["pad_mode"])

    def mel(S):
        return librosa.feature.melspectrogram(S=S, sr=p["sr"], n_mels=p["n_mels"],
                                              htk=False, norm="slaney")

    def db(M):
        return librosa.power_to_db(M)  # ref=1.0, amin=1e-10, top_db=80

    def mfcc(L):
        return librosa.feature.mfcc(S=L, n_mfcc=p["n_mfcc"])

    res = {}
    res["stft"], X = best_of(stft, repeat)
    res["power"], S = best_of(lambda: np.abs(X) ** 2, repeat)
    res["mel"], M = best_of(lambda: mel(S), repeat)
    res["db"], L = best_of(lambda: db(M), repeat)
    res["mfcc"], C = best_of(lambda: mfcc(L), repeat)
    res["chain"], _ = best_of(lambda: mfcc(db(mel(np.abs(stft()) ** 2))), repeat)
    return {"ms": res, "logmel": L, "mfcc": C}


def _w2_librosa_clip(clip: np.ndarray) -> np.ndarray:
    import librosa

    p = W2
    M = librosa.feature.melspectrogram(
        y=clip, sr=p["sr"], n_fft=p["n_fft"], win_length=p["win_length"],
        hop_length=p["hop_length"], window=p["window"], center=p["center"],
        pad_mode=p["pad_mode"], power=2.0, n_mels=p["n_mels"], fmin=p["fmin"],
        fmax=p["fmax"], htk=False, norm="slaney")
    return librosa.power_to_db(M)


def _w2_librosa_range(data: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.stack([_w2_librosa_clip(np.ascontiguousarray(data[i]))
                     for i in range(lo, hi)])


_WORKER_DATA = None


def _w2_worker_init(path: str) -> None:
    global _WORKER_DATA
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    _WORKER_DATA = np.load(path, mmap_mode="r")


def _w2_worker_range(bounds) -> np.ndarray:
    return _w2_librosa_range(_WORKER_DATA, bounds[0], bounds[1])


def librosa_w2(x: np.ndarray, path: str, nthreads: int, repeat: int) -> dict:
    n = x.shape[0]
    if nthreads <= 1:
        ms, out = best_of(lambda: _w2_librosa_range(x, 0, n), repeat,
                          warmup=lambda: _w2_librosa_range(x, 0, 1))
        return {"ms": ms, "out": out, "mode": "loop in one process"}
    # One contiguous block of clips per worker; inputs read from the .npy
    # (memory-mapped) in each worker, outputs pickled back to the parent.
    edges = np.linspace(0, n, nthreads + 1).round().astype(int)
    bounds = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    warm = [(i % n, i % n + 1) for i in range(nthreads)]
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS")}
    os.environ.update({k: "1" for k in saved})
    try:
        ctx = mp.get_context("spawn")
        with ctx.Pool(nthreads, initializer=_w2_worker_init, initargs=(path,)) as pool:
            ms, parts = best_of(
                lambda: pool.map(_w2_worker_range, bounds, chunksize=1), repeat,
                warmup=lambda: pool.map(_w2_worker_range, warm, chunksize=1))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"ms": ms, "out": np.concatenate(parts),
            "mode": f"multiprocessing Pool({nthreads}), spawn, 1 thread per worker, "
                    "results pickled back (counted)"}


# --------------------------------------------------------------------------
# torchaudio
# --------------------------------------------------------------------------


def torchaudio_w1(y: np.ndarray, repeat: int) -> dict:
    import torch
    import torchaudio.transforms as T

    p = W1
    x = torch.from_numpy(y)
    spec = T.Spectrogram(n_fft=p["n_fft"], win_length=p["n_fft"],
                         hop_length=p["hop_length"], window_fn=torch.hann_window,
                         power=None, normalized=False, center=p["center"],
                         pad_mode=p["pad_mode"], onesided=True)
    melscale = T.MelScale(n_mels=p["n_mels"], sample_rate=p["sr"], f_min=0.0,
                          f_max=None, n_stft=p["n_fft"] // 2 + 1, norm="slaney",
                          mel_scale="slaney")
    to_db = T.AmplitudeToDB(stype="power", top_db=p["top_db"])
    mfcc_t = T.MFCC(sample_rate=p["sr"], n_mfcc=p["n_mfcc"], dct_type=2, norm="ortho",
                    log_mels=False,
                    melkwargs=dict(n_fft=p["n_fft"], win_length=p["n_fft"],
                                   hop_length=p["hop_length"], f_min=0.0, f_max=None,
                                   n_mels=p["n_mels"], window_fn=torch.hann_window,
                                   power=2.0, normalized=False, center=p["center"],
                                   pad_mode=p["pad_mode"], norm="slaney",
                                   mel_scale="slaney"))
    dct = mfcc_t.dct_mat  # [n_mels, n_mfcc]; MFCC.forward's own last step

    def mfcc(L):
        return torch.matmul(L.transpose(-1, -2), dct).transpose(-1, -2)

    res = {}
    with torch.inference_mode():
        res["stft"], X = best_of(lambda: spec(x), repeat)
        res["power"], S = best_of(lambda: X.abs().pow(2.0), repeat)
        res["mel"], M = best_of(lambda: melscale(S), repeat)
        res["db"], L = best_of(lambda: to_db(M), repeat)
        res["mfcc"], C = best_of(lambda: mfcc(L), repeat)
        res["chain"], C2 = best_of(lambda: mfcc_t(x), repeat)  # MFCC in one go
    return {"ms": res, "logmel": L.numpy(), "mfcc": C.numpy(), "mfcc_chain": C2.numpy()}


def torchaudio_w2(x: np.ndarray, repeat: int, sanity: bool) -> dict:
    import torch
    import torchaudio.transforms as T

    p = W2
    xb = torch.from_numpy(x)
    melspec = T.MelSpectrogram(sample_rate=p["sr"], n_fft=p["n_fft"],
                               win_length=p["win_length"], hop_length=p["hop_length"],
                               f_min=p["fmin"], f_max=p["fmax"], n_mels=p["n_mels"],
                               window_fn=torch.hann_window, power=2.0, normalized=False,
                               center=p["center"], pad_mode=p["pad_mode"],
                               norm="slaney", mel_scale="slaney")
    to_db = T.AmplitudeToDB(stype="power", top_db=p["top_db"])

    def run():
        # [B, mels, frames] -> [B, 1, mels, frames]: AmplitudeToDB clamps each
        # item of a 4-D batch to its own max - top_db (3-D: one batch-wide max).
        return to_db(melspec(xb).unsqueeze(1)).squeeze(1)

    res = {}
    with torch.inference_mode():
        res["ms"], out = best_of(run, repeat, warmup=lambda: to_db(
            melspec(xb[:1]).unsqueeze(1)))
        res["out"] = out.numpy()
        if sanity:
            M = melspec(xb)
            per_clip = to_db(M.unsqueeze(1)).squeeze(1)
            batch_wide = to_db(M)  # the 3-D pitfall
            differs = (per_clip != batch_wide).flatten(1).any(dim=1)
            res["clips_changed_by_3d_clamp"] = int(differs.sum())
    return res


# --------------------------------------------------------------------------
# mm (ours)
# --------------------------------------------------------------------------


def run_mm(exe: str, workload: str, path: str, nthreads: int, repeat: int) -> dict:
    cmd = [exe, "--workload", workload, "--input", path,
           "--threads", str(nthreads), "--repeat", str(repeat)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{type(e).__name__}: {e}", "cmd": cmd}
    found = None
    for line in reversed(proc.stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("workload") == workload:
            found = obj
            break
    if proc.returncode != 0 or found is None:
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:300]
        return {"error": f"exit {proc.returncode}, "
                         f"{'no JSON line' if found is None else 'JSON found'}; "
                         f"stderr: {tail}", "cmd": cmd}

    def num(v):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) else None

    res = {"raw": found, "threads_reported": found.get("threads"),
           "fft_floor_ms": num(found.get("fft_floor_ms"))}
    if workload == "w1":
        stages = found.get("stages_ms") or {}
        res["ms"] = {s: num(stages.get(s)) if isinstance(stages, dict) else None
                     for s in W1_STAGES}
        res["ms"]["chain"] = num(found.get("chain_ms"))
    else:
        res["ms"] = num(found.get("total_ms"))
        res["clips_per_s"] = num(found.get("clips_per_s"))
    if found.get("threads") not in (None, nthreads):
        res["warning"] = f"tool reported threads={found.get('threads')}, asked {nthreads}"
    return res


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def header_lines(args, threads, mm_exe, mm_note) -> list[str]:
    from threadpoolctl import threadpool_info

    import torch

    lines = [
        f"date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs)",
        f"python {platform.python_version()}; librosa {version('librosa')}, "
        f"numpy {version('numpy')}, scipy {version('scipy')}, torch {version('torch')}, "
        f"torchaudio {version('torchaudio')}, threadpoolctl {version('threadpoolctl')}",
        f"threads: {threads} (torch.set_num_threads + threadpoolctl limits per T); "
        f"repeat {args.repeat} (best of, after 1 warm-up); quick={args.quick}",
        f"torch: {torch.__config__.parallel_info().strip().splitlines()[-1].strip()}; "
        f"MKL available={torch.backends.mkl.is_available()}",
    ]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        v = os.environ.get(var)
        lines.append(f"{var}: {'set to ' + repr(v) if v is not None else 'unset'}")
    if any(os.environ.get(v) is not None for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        lines.append("WARNING: OpenBLAS overrides are set; numpy's BLAS kernel may not be the "
                     "CPU's best. For benchmarking run: env -u OPENBLAS_CORETYPE "
                     "-u OPENBLAS_L2_SIZE ...")
    for info in threadpool_info():
        lines.append(
            "threadpool: {} {} {}{} threads={} ({})".format(
                info.get("user_api"), info.get("internal_api"), info.get("version"),
                f" kernel={info['architecture']}" if info.get("architecture") else "",
                info.get("num_threads"), os.path.basename(info.get("filepath", ""))))
    lines.append(f"mm: {mm_exe if mm_exe else '-'}{'; ' + mm_note if mm_note else ''}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: W1 {W1['quick_seconds']} s, "
                         f"W2 {W2['quick_clips']} clips x {W2['quick_seconds']} s")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats (best of)")
    ap.add_argument("--out", help="write raw numbers as JSON here")
    args = ap.parse_args(argv)
    threads = sorted({int(t) for t in args.threads.split(",") if t.strip()})
    if not threads or threads[0] < 1:
        ap.error("--threads needs positive integers")

    mm_exe = os.environ.get(MM_ENV) or None
    mm_note = ""
    if mm_exe is None:
        mm_note = f"${MM_ENV} unset: mm and FFT-floor rows skipped"
    else:
        resolved = mm_exe if os.path.sep in mm_exe else shutil.which(mm_exe)
        if not resolved or not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
            mm_note = f"${MM_ENV}={mm_exe!r} missing or not executable: mm and FFT-floor rows skipped"
            mm_exe = None
        else:
            mm_exe = os.path.abspath(resolved)

    import torch  # noqa: F401  (after argparse so --help is fast)

    w1_sec = W1["quick_seconds"] if args.quick else W1["seconds"]
    w2_clips = W2["quick_clips"] if args.quick else W2["clips"]
    w2_sec = W2["quick_seconds"] if args.quick else W2["seconds"]

    hdr = header_lines(args, threads, mm_exe, mm_note)
    print("\n".join(hdr), flush=True)

    results = {"meta": {"header": hdr, "quick": args.quick, "threads": threads,
                        "repeat": args.repeat, "argv": sys.argv},
               "w1": {"params": {**W1, "seconds": w1_sec}},
               "w2": {"params": {**W2, "clips": w2_clips, "seconds": w2_sec}}}
    mm_failed = False

    with tempfile.TemporaryDirectory(prefix="mm-bench-signal-") as tmp:
        y1 = make_w1(w1_sec)
        x2 = make_w2(w2_clips, w2_sec)
        p1, p2 = os.path.join(tmp, "w1.npy"), os.path.join(tmp, "w2.npy")
        np.save(p1, y1)
        np.save(p2, x2)

        # ---------------- W1 ----------------
        set_threads(1)
        lib1 = librosa_w1(y1, args.repeat)
        ta1, mm1 = {}, {}
        for t in threads:
            set_threads(t)
            ta1[t] = torchaudio_w1(y1, args.repeat)
            if mm_exe:
                mm1[t] = run_mm(mm_exe, "w1", p1, t, args.repeat)
                mm_failed |= "error" in mm1[t]
        ta_ref = ta1[threads[0]]
        san1 = {
            "logmel_max_abs_db_diff": float(np.max(np.abs(ta_ref["logmel"] - lib1["logmel"]))),
            "mfcc_max_abs_diff": float(np.max(np.abs(ta_ref["mfcc"] - lib1["mfcc"]))),
            "mfcc_chain_vs_stages_max_abs_diff": float(
                np.max(np.abs(ta_ref["mfcc_chain"] - ta_ref["mfcc"]))),
            "frames": int(lib1["logmel"].shape[-1]),
        }

        # ---------------- W2 ----------------
        lib2, ta2, mm2 = {}, {}, {}
        for i, t in enumerate(threads):
            set_threads(t)
            lib2[t] = librosa_w2(x2, p2, t, args.repeat)
            ta2[t] = torchaudio_w2(x2, args.repeat, sanity=(i == 0))
            if mm_exe:
                mm2[t] = run_mm(mm_exe, "w2", p2, t, args.repeat)
                mm_failed |= "error" in mm2[t]
        t0 = threads[0]
        san2 = {
            "logmel_max_abs_db_diff": float(np.max(np.abs(ta2[t0]["out"] - lib2[t0]["out"]))),
            "clips_changed_by_3d_clamp": ta2[t0].get("clips_changed_by_3d_clamp"),
            "frames": int(lib2[t0]["out"].shape[-1]),
        }
        if len(threads) > 1:
            san2["librosa_pool_vs_loop_max_abs_diff"] = float(max(
                np.max(np.abs(lib2[t]["out"] - lib2[t0]["out"])) for t in threads))

    # ---------------- report W1 ----------------
    tcols = [f"T={t}" for t in threads]
    print()
    print(f"W1 {W1['name']}: {w1_sec:g} s mono @ {W1['sr']} Hz ({y1.size} samples, "
          f"{san1['frames']} frames); stft {W1['n_fft']}/{W1['hop_length']} hann -> power -> "
          f"mel{W1['n_mels']} -> dB -> mfcc{W1['n_mfcc']}; whole chain, best-of ms")

    def mm_get(d, t, key=None):
        r = d.get(t)
        if not r or "error" in r:
            return None
        return r["ms"][key] if key else r["ms"]

    def floor_get(d, t):
        r = d.get(t)
        return None if not r or "error" in r else r.get("fft_floor_ms")

    lib_chain = lib1["ms"]["chain"]
    rows = [
        ("librosa (1 thread, reused)", [fmt(lib_chain) for _ in threads]),
        ("torchaudio", [fmt(ta1[t]["ms"]["chain"]) for t in threads]),
        ("mm (ours)", [fmt(mm_get(mm1, t, "chain")) for t in threads]),
        ("FFT floor (mm)", [fmt(floor_get(mm1, t)) for t in threads]),
        None,
        ("librosa / mm", [fmt(ratio(lib_chain, mm_get(mm1, t, "chain")), "x") for t in threads]),
        ("torchaudio / mm", [fmt(ratio(ta1[t]["ms"]["chain"], mm_get(mm1, t, "chain")), "x")
                             for t in threads]),
        ("mm / floor", [fmt(ratio(mm_get(mm1, t, "chain"), floor_get(mm1, t)), "x")
                        for t in threads]),
    ]
    print(table(["chain (ms)"] + tcols, rows))

    print()
    scols = ["librosa"]
    for t in threads:
        scols += [f"torchaudio T={t}", f"mm T={t}"]
    srows = []
    for s in W1_STAGES + ("chain",):
        cells = [fmt(lib1["ms"][s])]
        for t in threads:
            cells += [fmt(ta1[t]["ms"][s]), fmt(mm_get(mm1, t, s))]
        label = "chain (one go)" if s == "chain" else s
        if s == "chain":
            srows.append(("sum of stages", [fmt(sum(lib1["ms"][x] for x in W1_STAGES))] + sum(
                ([fmt(sum(ta1[t]["ms"][x] for x in W1_STAGES)),
                  fmt(None if mm_get(mm1, t) is None or None in
                      [mm_get(mm1, t, x) for x in W1_STAGES]
                      else sum(mm_get(mm1, t, x) for x in W1_STAGES))] for t in threads), [])))
        srows.append((label, cells))
    print(table(["W1 stages (ms)"] + scols, srows))
    print(f"W1 sanity: torchaudio vs librosa log-mel max |diff| = "
          f"{san1['logmel_max_abs_db_diff']:.4g} dB; mfcc max |diff| = "
          f"{san1['mfcc_max_abs_diff']:.4g} (torchaudio MFCC one-go vs stages "
          f"{san1['mfcc_chain_vs_stages_max_abs_diff']:.3g})")

    # ---------------- report W2 ----------------
    print()
    print(f"W2 {W2['name']}: {w2_clips} clips x {w2_sec:g} s @ {W2['sr']} Hz "
          f"({x2.shape[1]} samples, {san2['frames']} frames); n_fft {W2['n_fft']}, "
          f"win {W2['win_length']}, hop {W2['hop_length']}, {W2['n_mels']} mels "
          f"[{W2['fmin']:g}, {W2['fmax']:g}] Hz -> dB (per clip top_db); best-of")
    cols = []
    for t in threads:
        cols += [f"T={t} ms", f"T={t} clips/s"]

    def cps(ms):
        return None if not ms else w2_clips / (ms / 1e3)

    def row(label, getter):
        cells = []
        for t in threads:
            ms = getter(t)
            cells += [fmt(ms), fmt(cps(ms))]
        return (label, cells)

    def rrow(label, num, den):
        cells = []
        for t in threads:
            cells += [fmt(ratio(num(t), den(t)), "x"), ""]
        return (label, cells)

    lib_ms = lambda t: lib2[t]["ms"]  # noqa: E731
    ta_ms = lambda t: ta2[t]["ms"]  # noqa: E731
    mm_ms = lambda t: mm_get(mm2, t)  # noqa: E731
    fl_ms = lambda t: floor_get(mm2, t)  # noqa: E731
    rows = [row("librosa (loop / Pool)", lib_ms), row("torchaudio (batched)", ta_ms),
            row("mm (ours)", mm_ms), row("FFT floor (mm)", fl_ms), None,
            rrow("librosa / mm", lib_ms, mm_ms), rrow("torchaudio / mm", ta_ms, mm_ms),
            rrow("mm / floor", mm_ms, fl_ms)]
    print(table(["W2 (total)"] + cols, rows))
    print(f"W2 sanity: torchaudio vs librosa log-mel max |diff| = "
          f"{san2['logmel_max_abs_db_diff']:.4g} dB; a 3-D (batch-wide top_db) "
          f"AmplitudeToDB would change {san2['clips_changed_by_3d_clamp']}/{w2_clips} clips"
          + (f"; librosa Pool vs loop max |diff| = {san2['librosa_pool_vs_loop_max_abs_diff']:.3g}"
             if "librosa_pool_vs_loop_max_abs_diff" in san2 else ""))

    # ---------------- notes ----------------
    print()
    print("notes:")
    print(f"  librosa W1: single-threaded chain; measured once with BLAS limited to 1 thread, "
          f"reused for T={','.join(map(str, threads))}")
    for t in threads:
        print(f"  librosa W2 T={t}: {lib2[t]['mode']}")
    print("  torchaudio: CPU, torch.inference_mode(); W1 chain = torchaudio.transforms.MFCC; "
          "W2 = MelSpectrogram on [clips, samples] + AmplitudeToDB on [clips, 1, mels, frames]")
    print("  ratios are time ratios (librosa / mm = 3.00x: mm takes a third of librosa's time)")
    if mm_note:
        print(f"  {mm_note}")
    for name, d in (("w1", mm1), ("w2", mm2)):
        for t, r in d.items():
            if "error" in r:
                print(f"  mm {name} T={t} FAILED: {r['error']}")
            if "warning" in r:
                print(f"  mm {name} T={t}: {r['warning']}")

    if args.out:
        strip = lambda d: {k: v for k, v in d.items()  # noqa: E731
                           if k not in ("logmel", "mfcc", "mfcc_chain", "out")}
        results["w1"].update({
            "librosa": strip(lib1), "torchaudio": {str(t): strip(ta1[t]) for t in threads},
            "mm": {str(t): mm1[t] for t in mm1}, "sanity": san1})
        results["w2"].update({
            "librosa": {str(t): strip(lib2[t]) for t in threads},
            "torchaudio": {str(t): strip(ta2[t]) for t in threads},
            "mm": {str(t): mm2[t] for t in mm2}, "sanity": san2})
        for t in threads:
            for d in (results["w2"]["librosa"][str(t)], results["w2"]["torchaudio"][str(t)]):
                d["clips_per_s"] = cps(d["ms"])
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)
            f.write("\n")
        print(f"wrote {args.out}")
    return 1 if mm_failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Randomized parity sweep: `mm audio features` against librosa over the space the CLI accepts.

Usage (from the repository root, with the venv that `cargo xtask setup` makes)::

    /opt/venv-torch-2.11.0/bin/python scripts/librosa_sweep.py --mm target/release/mm \\
        [--settings 300] [--seed 0] [--json OUT.json] [--keep DIR]

Each setting ``i`` is drawn from ``np.random.default_rng([seed, i])``, so a setting is the same
whatever ``--settings`` says, and ``--only I`` reruns one. A setting is a WAV file (sample rate
8-48 kHz; 1-3 channels; PCM_U8, PCM_16, PCM_24, PCM_32 or FLOAT; from 40 samples, shorter than
``n_fft`` at times, to 1.2 s) and one feature (stft-mag, power, mel, log-mel, mfcc) with odd or
even ``n_fft`` (16-4096), ``win_length <= n_fft``, hop, window, ``center`` and every pad mode
the CLI offers, mel scale and norm, ``fmin``/``fmax`` (``fmax`` up to 1.1x Nyquist),
``n_mels``, ``n_mfcc``, lifter, dB ``ref`` (a number or ``max``), ``amin`` and ``top_db``,
``--mono true|false`` and ``--precision f32|f64``. librosa reads the file with
``librosa.load(path, sr=None, mono=...)``; mm with ``--sample-rate native``.

Outcomes:

* librosa raises: mm must fail too (``both-error``).
* librosa warns: mm must print ``warning:`` on stderr with the same output, or fail (mm
  refuses a mel bank with an empty filter, where librosa warns and returns a zero row).
* otherwise mm must succeed with librosa's shape, within the golden tests' tolerances:
  spectra and mel ``max |d| <= 1e-5 max |librosa|``; log-mel ``max |d| <= 1e-3`` dB; MFCC
  ``max |d| <= max(1e-3, 2e-6 max |librosa|)`` (both sides run the DCT in float32).

Not drawn, because mm differs on purpose (``mm-signal``'s crate docs list them): resampling
(librosa uses soxr, mm rubato), ``fmin < 0`` and ``n_mfcc > n_mels`` (errors in mm; librosa
accepts them), the f32 FFT without a dB floor at or above 80 dB (``Precision::F32``: bins
more than 80 dB below the maximum carry its rounding), and pad modes the CLI does not offer.

Prints one line per failure and the worst error per feature; exits 1 if any setting failed.
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

FEATURES = ("stft-mag", "power", "mel", "log-mel", "mfcc")
RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
ENCODINGS = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT")
WINDOWS = ("hann", "hamming", "blackman", "boxcar")
PAD_MODES = ("constant", "edge", "linear_ramp", "reflect", "symmetric")
REL_TOL = 1e-5
DB_TOL = 1e-3
MFCC_REL_TOL = 2e-6


def draw(seed, i):
    """Setting ``i`` of the sweep with ``seed``: a dict of the signal and the CLI's flags."""
    r = np.random.default_rng([seed, i])
    s = {"index": i, "feature": FEATURES[r.integers(len(FEATURES))]}
    s["sr"] = int(RATES[r.integers(len(RATES))])
    s["channels"] = int(r.choice([1, 1, 1, 2, 3]))
    s["mono"] = bool(s["channels"] == 1 or r.random() < 0.5)
    s["encoding"] = ENCODINGS[r.integers(len(ENCODINGS))]
    if r.random() < 0.5:
        n_fft = int(2 ** r.integers(4, 13))
    else:
        n_fft = int(r.integers(16, 4097))
    s["n_fft"] = n_fft
    s["win_length"] = None if r.random() < 0.5 else int(r.integers(max(1, n_fft // 4), n_fft + 1))
    wl = s["win_length"] or n_fft
    s["hop_length"] = None if r.random() < 0.4 else int(r.integers(max(1, wl // 8), wl + 1))
    if (s["hop_length"] is None and wl // 4 == 0):
        s["hop_length"] = 1
    s["window"] = WINDOWS[r.integers(len(WINDOWS))]
    s["center"] = bool(r.random() < 0.7)
    s["pad_mode"] = PAD_MODES[r.integers(len(PAD_MODES))]
    # clip length: usually a few frames to 1.2 s; sometimes shorter than n_fft
    if r.random() < 0.15:
        n = int(r.integers(40, max(41, n_fft)))
    else:
        n = int(r.integers(n_fft, max(n_fft + 1, int(1.2 * s["sr"]))))
    s["samples"] = n
    nyq = s["sr"] / 2
    # mostly banks whose every filter covers a bin; now and then too many mels for n_fft
    top = 128 if r.random() < 0.15 else int(np.clip(n_fft // 8, 4, 128))
    s["n_mels"] = int(r.integers(4, top + 1))
    s["fmin"] = 0.0 if r.random() < 0.5 else float(round(r.uniform(0, 0.2 * nyq), 3))
    s["fmax"] = None if r.random() < 0.5 else float(round(r.uniform(s["fmin"] + 0.3 * nyq,
                                                                     1.1 * nyq), 3))
    s["htk"] = bool(r.random() < 0.5)
    s["mel_norm"] = "slaney" if r.random() < 0.6 else "none"
    s["n_mfcc"] = int(r.integers(1, min(s["n_mels"], 40) + 1))
    s["lifter"] = 0.0 if r.random() < 0.5 else float(round(r.uniform(0.5, 40), 3))
    u = r.random()
    s["ref"] = "1.0" if u < 0.5 else "max" if u < 0.75 else f"{r.uniform(1e-3, 10):.6g}"
    s["amin"] = float([1e-10, 1e-8, 1e-5][r.integers(3)])
    u = r.random()
    s["top_db"] = None if u < 0.2 else 80.0 if u < 0.6 else float(round(r.uniform(10, 120), 3))
    s["precision"] = "f64" if r.random() < 0.5 else "f32"
    db_feature = s["feature"] in ("log-mel", "mfcc")
    if db_feature and s["precision"] == "f32" and (s["top_db"] is None or s["top_db"] > 80):
        s["precision"] = "f64"  # see the module docstring
    s["signal_seed"] = int(r.integers(2 ** 31))
    return s


def make_signal(s):
    """``[channels, samples]`` float64 in (-1, 1): sines, a chirp, noise and a silent gap."""
    r = np.random.default_rng(s["signal_seed"])
    n, sr = s["samples"], s["sr"]
    t = np.arange(n) / sr
    out = np.zeros((s["channels"], n))
    for c in range(s["channels"]):
        y = np.zeros(n)
        for _ in range(r.integers(1, 4)):
            f = r.uniform(30, 0.45 * sr)
            y += r.uniform(0.05, 0.3) * np.sin(2 * np.pi * f * t + r.uniform(0, 2 * np.pi))
        f0, f1 = r.uniform(50, 0.4 * sr, size=2)
        y += 0.1 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * max(t[-1], 1e-9))))
        y += r.uniform(0.001, 0.05) * r.standard_normal(n)
        if n > 100 and r.random() < 0.5:
            a = int(r.integers(0, n // 2))
            y[a:a + n // 4] = 0.0
        out[c] = y * (r.uniform(0.2, 0.9) / max(np.max(np.abs(y)), 1e-9))
    return out


def mm_args(s, wav, out):
    a = ["audio", "features", "--input", str(wav), "--feature", s["feature"], "--out", str(out),
         "--sample-rate", "native", "--mono", "true" if s["mono"] else "false",
         "--n-fft", str(s["n_fft"]), "--window", s["window"],
         "--center", "true" if s["center"] else "false", "--pad-mode",
         s["pad_mode"].replace("_", "-"), "--precision", s["precision"]]
    for k in ("win_length", "hop_length"):
        if s[k] is not None:
            a += ["--" + k.replace("_", "-"), str(s[k])]
    if s["feature"] in ("mel", "log-mel", "mfcc"):
        a += ["--n-mels", str(s["n_mels"]), "--fmin", repr(s["fmin"]), "--mel-norm",
              s["mel_norm"]]
        if s["fmax"] is not None:
            a += ["--fmax", repr(s["fmax"])]
        if s["htk"]:
            a.append("--htk")
    if s["feature"] in ("log-mel", "mfcc"):
        a += ["--ref", s["ref"], "--amin", repr(s["amin"]),
              "--top-db", "-1" if s["top_db"] is None else repr(s["top_db"])]
    if s["feature"] == "mfcc":
        a += ["--n-mfcc", str(s["n_mfcc"]), "--lifter", repr(s["lifter"])]
    return a


def reference(s, wav):
    """librosa's output for setting ``s`` on ``wav``, as float32."""
    y, sr = librosa.load(wav, sr=None, mono=s["mono"])
    assert sr == s["sr"], (sr, s["sr"])
    stft = dict(n_fft=s["n_fft"], hop_length=s["hop_length"], win_length=s["win_length"],
                window=s["window"], center=s["center"], pad_mode=s["pad_mode"])
    f = s["feature"]
    if f in ("stft-mag", "power"):
        mag = np.abs(librosa.stft(y, **stft))
        return mag if f == "stft-mag" else mag ** 2
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, power=2.0, n_mels=s["n_mels"], fmin=s["fmin"], fmax=s["fmax"],
        htk=s["htk"], norm="slaney" if s["mel_norm"] == "slaney" else None, **stft)
    if f == "mel":
        return mel
    ref = np.max if s["ref"] == "max" else float(s["ref"])
    db = librosa.power_to_db(mel, ref=ref, amin=s["amin"], top_db=s["top_db"])
    if f == "log-mel":
        return db
    return librosa.feature.mfcc(S=db, n_mfcc=s["n_mfcc"], dct_type=2, norm="ortho",
                                lifter=s["lifter"])


def run_one(s, mm, work):
    """The outcome of one setting: a dict with ``status`` ('ok', 'both-error', 'warned',
    'refused-warning' or 'FAIL') and details."""
    wav, out = work / f"s{s['index']}.wav", work / f"s{s['index']}.npy"
    sf.write(wav, make_signal(s).T, s["sr"], subtype=s["encoding"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            want = np.asarray(reference(s, wav), dtype=np.float32)
            ref_err = None
        except Exception as e:  # librosa's ParameterError and friends
            want, ref_err = None, f"{type(e).__name__}: {e}"
    # librosa's own warnings (UserWarning), not deprecations inside the libraries it imports
    ref_warn = sorted({str(w.message).split("\n")[0] for w in caught
                       if not issubclass(w.category, DeprecationWarning)})
    p = subprocess.run([mm] + mm_args(s, wav, out), capture_output=True, text=True)
    mm_warned = any(line.startswith("warning:") for line in p.stderr.splitlines())
    res = {"setting": s, "librosa_error": ref_err, "librosa_warnings": ref_warn,
           "mm_exit": p.returncode, "mm_stderr": p.stderr.strip()[-400:]}
    if ref_err is not None:
        res["status"] = "both-error" if p.returncode != 0 else "FAIL"
        if p.returncode == 0:
            res["why"] = f"librosa raised ({ref_err}) but mm succeeded"
        return res
    if p.returncode != 0:
        if ref_warn:
            res["status"] = "refused-warning"
        else:
            res["status"], res["why"] = "FAIL", "mm failed where librosa succeeded silently"
        return res
    got = np.load(out)
    if got.shape != want.shape:
        res["status"], res["why"] = "FAIL", f"shape {got.shape} != librosa's {want.shape}"
        return res
    d = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if s["feature"] in ("log-mel", "mfcc"):
        err, tol = float(d.max()) if d.size else 0.0, DB_TOL
        if s["feature"] == "mfcc" and want.size:
            # librosa's DCT runs in float32 (scipy on float32 input), as ours: without a dB
            # floor c0 reaches ~1400, where 1e-3 is 8 float32 ulps
            tol = max(DB_TOL, MFCC_REL_TOL * float(np.max(np.abs(want))))
    else:
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        err, tol = (float(d.max()) / scale if scale > 0 else float(d.max())), REL_TOL
    res["error"], res["tolerance"] = err, tol
    if not np.all(np.isfinite(got)) or err > tol:
        res["status"], res["why"] = "FAIL", f"error {err:.3e} over {tol:.0e}"
    elif ref_warn and not mm_warned:
        res["status"], res["why"] = "FAIL", f"librosa warned ({ref_warn[0]}) but mm did not"
    else:
        res["status"] = "warned" if ref_warn else "ok"
    return res


def describe(s):
    keys = ("feature", "sr", "channels", "mono", "encoding", "samples", "n_fft", "win_length",
            "hop_length", "window", "center", "pad_mode", "precision")
    extra = ()
    if s["feature"] in ("mel", "log-mel", "mfcc"):
        extra += ("n_mels", "fmin", "fmax", "htk", "mel_norm")
    if s["feature"] in ("log-mel", "mfcc"):
        extra += ("ref", "amin", "top_db")
    if s["feature"] == "mfcc":
        extra += ("n_mfcc", "lifter")
    return " ".join(f"{k}={s[k]}" for k in keys + extra)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mm", required=True, help="the mm binary")
    ap.add_argument("--settings", type=int, default=300, help="how many settings (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", type=int, help="run setting I alone")
    ap.add_argument("--json", help="write every outcome to this JSON file")
    ap.add_argument("--keep", help="keep the WAV and .npy files in this folder")
    args = ap.parse_args(argv)
    t0 = time.time()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mm_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    indices = [args.only] if args.only is not None else range(args.settings)
    results = []
    try:
        for i in indices:
            res = run_one(draw(args.seed, i), args.mm, work)
            results.append(res)
            if res["status"] == "FAIL":
                print(f"FAIL setting {i}: {res['why']}\n  {describe(res['setting'])}\n"
                      f"  mm: {res['mm_stderr'][-200:]}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"librosa {librosa.__version__}, numpy {np.__version__}; seed {args.seed}, "
          f"{len(results)} settings in {time.time() - t0:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"{'feature':10} {'compared':>8} {'worst error':>12} {'tolerance':>9}  worst setting")
    for f in FEATURES:
        rs = [r for r in results if r["setting"]["feature"] == f and "error" in r]
        if not rs:
            print(f"{f:10} {0:8}")
            continue
        w = max(rs, key=lambda r: r["error"])
        kind = "dB" if f in ("log-mel", "mfcc") else "rel"
        print(f"{f:10} {len(rs):8} {w['error']:12.3e} {w['tolerance']:6.0e} {kind:3} "
              f"#{w['setting']['index']}: {describe(w['setting'])}")
    for status in ("both-error", "refused-warning", "warned"):
        for r in (r for r in results if r["status"] == status):
            why = r["librosa_error"] or "; ".join(r["librosa_warnings"])
            print(f"{status} #{r['setting']['index']}: librosa: {why[:120]}")
    if args.json:
        tmp = Path(args.json + ".tmp")
        tmp.write_text(json.dumps({"librosa_version": librosa.__version__, "seed": args.seed,
                                   "results": results}, indent=1, default=str))
        tmp.replace(args.json)
    return 1 if counts.get("FAIL") else 0


if __name__ == "__main__":
    sys.exit(main())

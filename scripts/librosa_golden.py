#!/usr/bin/env python3
"""Generate librosa golden fixtures for the `mm-signal` crate.

Usage (from the repository root)::

    /opt/venv-torch-2.11.0/bin/python scripts/librosa_golden.py           # (re)write fixtures
    /opt/venv-torch-2.11.0/bin/python scripts/librosa_golden.py --check   # verify they are current

``cargo xtask setup`` installs librosa 0.11.0 into that venv (the PyTorch venv; override with
``MM_TORCH_VENV``). Files whose values are unchanged up to rounding keep their committed bytes.

Output directory: ``crates/mm-signal/tests/fixtures/librosa/``

* ``x_*.npy``   input signals, float32 1-D (see ``make_inputs``).  Every
  reference output is computed from exactly these float32 arrays (they are
  re-loaded from disk before use), so Rust reads bit-identical inputs.
* ``<case>.npy`` expected outputs, little-endian float32, C order.
  Complex STFT outputs are stored as ``[bins, frames, 2]`` (real, imag).
* ``cases.json`` ``{"librosa_version", "numpy_version", "cases": [...]}``;
  each case is ``{"name", "func", "input", "sr", "params", "output",
  "shape"}``.  ``params`` are librosa keyword names with JSON-native values
  (windows as strings, ``ref="max"`` meaning ``ref=np.max``).  ``sr`` is the
  sample rate passed to librosa, or null when the function takes none
  (stft/magnitude/power/amplitude_to_db/istft/griffinlim); the input's own
  sample rate is in ``INPUT_SR`` below (x_music: 22050, others: 16000).

``--check`` regenerates into a temporary directory and compares against the
committed fixtures (max |new - old| <= 1e-6 max |old| + 1e-7, same dtype/shape, same
file set, byte-identical cases.json).  Exit 1 if stale, 0 if current.

Deterministic: inputs use ``np.random.RandomState(seed)`` (legacy generator,
whose stream numpy keeps stable across versions); BLAS/OpenMP threads are
pinned to 1 before numpy is imported.
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = REPO_ROOT / "crates" / "mm-signal" / "tests" / "fixtures" / "librosa"

MAX_FILE_BYTES = 100_000
MAX_TOTAL_BYTES = 1_600_000
RTOL = 1e-6
ATOL = 1e-7

INPUT_SR = {
    "x_chirp.npy": 16000,
    "x_odd.npy": 16000,
    "x_short.npy": 16000,
    "x_music.npy": 22050,
}

# ---------------------------------------------------------------------------
# librosa.stft pad_mode support (librosa 0.11.0, librosa/core/spectrum.py):
#
#     if center:
#         if pad_mode in ("wrap", "maximum", "mean", "median", "minimum"):
#             raise ParameterError(
#                 f"pad_mode='{pad_mode}' is not supported by librosa.stft")
#
# Rejected: wrap, maximum, mean, median, minimum -- stft pads the head and the
# tail of the signal separately (to avoid a full copy), which is only
# equivalent to padding the whole signal for modes that depend on the local
# edge samples; these five look at the whole signal (or the other end).
# Accepted (the `_STFTPad` Literal in librosa/_typing.py): constant, edge,
# linear_ramp, reflect, symmetric, empty.  `empty` is accepted but NOT used in
# fixtures: np.pad(mode="empty") leaves the padding uninitialised, so the
# output is non-deterministic.  `_check_pad_mode_support()` re-verifies this
# list against the installed librosa on every run.
# ---------------------------------------------------------------------------
PAD_MODES_ACCEPTED = ["constant", "edge", "linear_ramp", "reflect", "symmetric", "empty"]
PAD_MODES_REJECTED = ["wrap", "maximum", "mean", "median", "minimum"]
PAD_MODES_USED = ["constant", "edge", "linear_ramp", "reflect", "symmetric"]


def _check_pad_mode_support():
    y = np.zeros(64, dtype=np.float32)
    for mode in PAD_MODES_ACCEPTED:
        librosa.stft(y, n_fft=16, hop_length=4, pad_mode=mode)
    for mode in PAD_MODES_REJECTED:
        try:
            librosa.stft(y, n_fft=16, hop_length=4, pad_mode=mode)
        except librosa.util.exceptions.ParameterError:
            continue
        raise RuntimeError(f"librosa.stft unexpectedly accepted pad_mode={mode!r}; "
                           "update PAD_MODES_* in this script")


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------
def make_inputs():
    """Return {file name: float32 1-D array}. All maths in float64, cast once."""
    out = {}

    # x_chirp: linear chirp 100 -> 6000 Hz over the clip, amp 0.5, + 0.05 N(0,1)
    sr, n = 16000, 4000
    t = np.arange(n, dtype=np.float64) / sr
    dur = n / sr
    f0, f1 = 100.0, 6000.0
    phase = 2.0 * np.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t * t)
    noise = np.random.RandomState(0).standard_normal(n)
    out["x_chirp.npy"] = (0.5 * np.sin(phase) + 0.05 * noise).astype(np.float32)

    # x_odd: 440 Hz + 1234 Hz sines + small noise, odd length
    sr, n = 16000, 3001
    t = np.arange(n, dtype=np.float64) / sr
    noise = np.random.RandomState(1).standard_normal(n)
    out["x_odd.npy"] = (0.4 * np.sin(2 * np.pi * 440.0 * t)
                        + 0.3 * np.sin(2 * np.pi * 1234.0 * t)
                        + 0.01 * noise).astype(np.float32)

    # x_short: 300 samples of noise (shorter than every stft n_fft used)
    out["x_short.npy"] = (0.1 * np.random.RandomState(2).standard_normal(300)).astype(np.float32)

    # x_music: 220 Hz harmonic tone, 5 harmonics with decaying amplitude, + noise
    sr, n = 22050, 8000
    t = np.arange(n, dtype=np.float64) / sr
    y = np.zeros(n)
    for k in range(1, 6):
        y += 0.4 * (0.6 ** (k - 1)) * np.sin(2 * np.pi * 220.0 * k * t)
    y += 0.01 * np.random.RandomState(3).standard_normal(n)
    out["x_music.npy"] = y.astype(np.float32)

    for name, arr in out.items():
        assert arr.dtype == np.float32 and arr.ndim == 1, name
    return out


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------
def _stft(n_fft, hop_length=None, win_length=None, window="hann", center=True,
          pad_mode="constant"):
    return {"n_fft": n_fft, "hop_length": hop_length, "win_length": win_length,
            "window": window, "center": center, "pad_mode": pad_mode}


def _mel_kw(n_fft=2048, hop_length=512, win_length=None, window="hann",
            center=True, pad_mode="constant", power=2.0, n_mels=128, fmin=0.0,
            fmax=None, htk=False, norm="slaney"):
    return {"n_fft": n_fft, "hop_length": hop_length, "win_length": win_length,
            "window": window, "center": center, "pad_mode": pad_mode,
            "power": power, "n_mels": n_mels, "fmin": fmin, "fmax": fmax,
            "htk": htk, "norm": norm}


def _mfcc_kw(n_mfcc=20, lifter=0, n_fft=2048, hop_length=512, n_mels=128,
             htk=False, fmin=0.0, fmax=None):
    # NB: in librosa.feature.mfcc `norm` is the DCT norm; the mel filter norm
    # is `mel_norm`.  power_to_db inside mfcc uses its defaults
    # (ref=1.0, amin=1e-10, top_db=80.0).
    return {"n_mfcc": n_mfcc, "dct_type": 2, "norm": "ortho", "lifter": lifter,
            "mel_norm": "slaney", "n_fft": n_fft, "hop_length": hop_length,
            "win_length": None, "window": "hann", "center": True,
            "pad_mode": "constant", "power": 2.0, "n_mels": n_mels,
            "fmin": fmin, "fmax": fmax, "htk": htk}


def _gl_kw(n_iter=8, hop_length=None, win_length=None, momentum=0.99, length=None):
    return {"n_iter": n_iter, "hop_length": hop_length, "win_length": win_length,
            "window": "hann", "center": True, "momentum": momentum,
            "init": None, "length": length}


def build_cases():
    C = []

    def add(name, func, inp, sr, params):
        C.append({"name": name, "func": func, "input": inp, "sr": sr, "params": params})

    # --- stft (complex, stored [bins, frames, 2]) ---------------------------
    add("stft_odd_n512_h128_hann_c_constant", "stft", "x_odd.npy", None,
        _stft(512, 128))
    add("stft_odd_n511_h128_hann_c_constant", "stft", "x_odd.npy", None,
        _stft(511, 128))
    add("stft_odd_n512_w400_hnone_hann_c_reflect", "stft", "x_odd.npy", None,
        _stft(512, None, 400, "hann", True, "reflect"))
    add("stft_odd_n512_h128_hamming_nc", "stft", "x_odd.npy", None,
        _stft(512, 128, None, "hamming", False))
    add("stft_odd_n511_w400_h128_blackman_nc", "stft", "x_odd.npy", None,
        _stft(511, 128, 400, "blackman", False))
    add("stft_odd_n512_hnone_boxcar_c_edge", "stft", "x_odd.npy", None,
        _stft(512, None, None, "boxcar", True, "edge"))
    add("stft_short_n512_h128_hann_c_constant", "stft", "x_short.npy", None,
        _stft(512, 128, None, "hann", True, "constant"))
    add("stft_short_n512_h128_hann_c_reflect", "stft", "x_short.npy", None,
        _stft(512, 128, None, "hann", True, "reflect"))
    add("stft_short_n511_w400_hnone_hamming_c_linear_ramp", "stft", "x_short.npy", None,
        _stft(511, None, 400, "hamming", True, "linear_ramp"))

    # --- magnitude ----------------------------------------------------------
    add("mag_odd_n512_h128_hann_c_edge", "magnitude", "x_odd.npy", None,
        _stft(512, 128, None, "hann", True, "edge"))
    add("mag_odd_n512_h128_hann_c_symmetric", "magnitude", "x_odd.npy", None,
        _stft(512, 128, None, "hann", True, "symmetric"))
    add("mag_odd_n512_h128_hann_c_linear_ramp", "magnitude", "x_odd.npy", None,
        _stft(512, 128, None, "hann", True, "linear_ramp"))
    add("mag_odd_n511_hnone_hamming_c_reflect", "magnitude", "x_odd.npy", None,
        _stft(511, None, None, "hamming", True, "reflect"))
    add("mag_chirp_n512_w400_h128_blackman_c_constant", "magnitude", "x_chirp.npy", None,
        _stft(512, 128, 400, "blackman", True, "constant"))
    add("mag_chirp_n511_w400_hnone_boxcar_nc", "magnitude", "x_chirp.npy", None,
        _stft(511, None, 400, "boxcar", False))
    add("mag_short_n511_h128_hann_c_edge", "magnitude", "x_short.npy", None,
        _stft(511, 128, None, "hann", True, "edge"))
    # pad (512) > len-1 (299): numpy reflect reflects repeatedly
    add("mag_short_n1024_h256_hann_c_reflect", "magnitude", "x_short.npy", None,
        _stft(1024, 256, None, "hann", True, "reflect"))
    add("mag_short_n1024_h256_hann_c_symmetric", "magnitude", "x_short.npy", None,
        _stft(1024, 256, None, "hann", True, "symmetric"))

    # --- power --------------------------------------------------------------
    add("pow_odd_n512_h128_hann_c_constant", "power", "x_odd.npy", None,
        _stft(512, 128))
    add("pow_odd_n511_h128_hann_nc", "power", "x_odd.npy", None,
        _stft(511, 128, None, "hann", False))
    add("pow_odd_n512_w400_h128_hamming_c_symmetric", "power", "x_odd.npy", None,
        _stft(512, 128, 400, "hamming", True, "symmetric"))
    add("pow_chirp_n512_hnone_blackman_c_reflect", "power", "x_chirp.npy", None,
        _stft(512, None, None, "blackman", True, "reflect"))
    add("pow_chirp_n511_w400_hnone_hann_c_edge", "power", "x_chirp.npy", None,
        _stft(511, None, 400, "hann", True, "edge"))
    add("pow_chirp_n512_h128_boxcar_nc", "power", "x_chirp.npy", None,
        _stft(512, 128, None, "boxcar", False))
    add("pow_short_n512_h128_blackman_c_symmetric", "power", "x_short.npy", None,
        _stft(512, 128, None, "blackman", True, "symmetric"))
    add("pow_short_n511_hnone_boxcar_c_linear_ramp", "power", "x_short.npy", None,
        _stft(511, None, None, "boxcar", True, "linear_ramp"))

    # --- mel filter banks (input null) --------------------------------------
    # n_fft=2048 uses n_mels=20 so that the dense [n_mels, 1025] float32 file
    # stays < 100 KB; 128-band banks are covered by the melspectrogram/mfcc
    # cases below.
    def mel_p(sr, n_fft, n_mels, htk, norm, fmin, fmax):
        return {"n_fft": n_fft, "n_mels": n_mels, "fmin": fmin, "fmax": fmax,
                "htk": htk, "norm": norm}

    add("melfb_sr16000_n512_m40_slaney", "mel_filters", None, 16000,
        mel_p(16000, 512, 40, False, "slaney", 0.0, None))
    add("melfb_sr16000_n512_m80_htk_slaney", "mel_filters", None, 16000,
        mel_p(16000, 512, 80, True, "slaney", 0.0, None))
    add("melfb_sr16000_n512_m40_htk_nonorm", "mel_filters", None, 16000,
        mel_p(16000, 512, 40, True, None, 0.0, None))
    add("melfb_sr16000_n512_m40_slaney_fmin300_fmax5000", "mel_filters", None, 16000,
        mel_p(16000, 512, 40, False, "slaney", 300.0, 5000.0))
    add("melfb_sr22050_n512_m40_nonorm", "mel_filters", None, 22050,
        mel_p(22050, 512, 40, False, None, 0.0, None))
    add("melfb_sr22050_n512_m40_htk_slaney_fmax5000", "mel_filters", None, 22050,
        mel_p(22050, 512, 40, True, "slaney", 0.0, 5000.0))
    add("melfb_sr22050_n2048_m20_slaney", "mel_filters", None, 22050,
        mel_p(22050, 2048, 20, False, "slaney", 0.0, None))
    add("melfb_sr22050_n2048_m20_htk_nonorm_fmin300_fmax5000", "mel_filters", None, 22050,
        mel_p(22050, 2048, 20, True, None, 300.0, 5000.0))

    # odd n_fft: librosa's bins are k * sr / n_fft (np.fft.rfftfreq), the last
    # one below Nyquist (issue 22)
    add("melfb_sr44100_n1023_m16_slaney", "mel_filters", None, 44100,
        mel_p(44100, 1023, 16, False, "slaney", 0.0, None))
    add("melfb_sr16000_n511_m20_htk_nonorm_fmin100_fmax7000", "mel_filters", None, 16000,
        mel_p(16000, 511, 20, True, None, 100.0, 7000.0))
    # fmax above Nyquist: librosa accepts it without a warning
    add("melfb_sr16000_n512_m20_slaney_fmax9000", "mel_filters", None, 16000,
        mel_p(16000, 512, 20, False, "slaney", 0.0, 9000.0))

    # --- melspectrogram -----------------------------------------------------
    add("melspec_music_n2048_h512_m128", "melspectrogram", "x_music.npy", 22050,
        _mel_kw())
    add("melspec_chirp_n512_h160_w400_m80_fmax8000", "melspectrogram", "x_chirp.npy", 16000,
        _mel_kw(n_fft=512, hop_length=160, win_length=400, n_mels=80, fmax=8000.0))
    add("melspec_music_n1024_h256_m64_htk", "melspectrogram", "x_music.npy", 22050,
        _mel_kw(n_fft=1024, hop_length=256, n_mels=64, htk=True))
    add("melspec_chirp_n512_h128_m40_nonorm", "melspectrogram", "x_chirp.npy", 16000,
        _mel_kw(n_fft=512, hop_length=128, n_mels=40, norm=None))

    add("melspec_music_n1023_h256_w800_m64_nc", "melspectrogram", "x_music.npy", 22050,
        _mel_kw(n_fft=1023, hop_length=256, win_length=800, n_mels=64, center=False))

    # --- power_to_db --------------------------------------------------------
    add("p2db_music_ref1_amin1e-10_top80", "power_to_db", "x_music.npy", 22050,
        {"mel": _mel_kw(), "db": {"ref": 1.0, "amin": 1e-10, "top_db": 80.0}})
    add("p2db_music_ref1_amin1e-10_topnone", "power_to_db", "x_music.npy", 22050,
        {"mel": _mel_kw(), "db": {"ref": 1.0, "amin": 1e-10, "top_db": None}})
    add("p2db_chirp_refmax_amin1e-10_top80", "power_to_db", "x_chirp.npy", 16000,
        {"mel": _mel_kw(n_fft=512, hop_length=160, win_length=400, n_mels=80, fmax=8000.0),
         "db": {"ref": "max", "amin": 1e-10, "top_db": 80.0}})
    add("p2db_chirp_ref1_amin1e-5_top80", "power_to_db", "x_chirp.npy", 16000,
        {"mel": _mel_kw(n_fft=512, hop_length=128, n_mels=40),
         "db": {"ref": 1.0, "amin": 1e-5, "top_db": 80.0}})

    # --- amplitude_to_db ----------------------------------------------------
    add("a2db_odd_n512_h256_ref1_amin1e-5_top80", "amplitude_to_db", "x_odd.npy", None,
        {"stft": _stft(512, 256), "db": {"ref": 1.0, "amin": 1e-5, "top_db": 80.0}})
    add("a2db_odd_n512_h256_refmax_amin1e-5_topnone", "amplitude_to_db", "x_odd.npy", None,
        {"stft": _stft(512, 256), "db": {"ref": "max", "amin": 1e-5, "top_db": None}})

    # --- mfcc ---------------------------------------------------------------
    add("mfcc_music_default", "mfcc", "x_music.npy", 22050, _mfcc_kw())
    add("mfcc_music_n13", "mfcc", "x_music.npy", 22050, _mfcc_kw(n_mfcc=13))
    add("mfcc_music_n13_lifter22", "mfcc", "x_music.npy", 22050,
        _mfcc_kw(n_mfcc=13, lifter=22))
    add("mfcc_chirp_htk_n512_h160_m40", "mfcc", "x_chirp.npy", 16000,
        _mfcc_kw(n_mfcc=13, n_fft=512, hop_length=160, n_mels=40, htk=True))

    # --- delta (mode='interp' needs width <= n_frames) ----------------------
    mf_music = _mfcc_kw(n_mfcc=13)                                  # 16 frames
    mf_chirp = _mfcc_kw(n_mfcc=13, n_fft=512, hop_length=160, n_mels=40)  # 26 frames
    mf_short = _mfcc_kw(n_mfcc=13, n_fft=256, hop_length=64, n_mels=40)   # 5 frames
    add("delta_music_w9_o1", "delta", "x_music.npy", 22050,
        {"mfcc": mf_music, "delta": {"width": 9, "order": 1}})
    add("delta_music_w9_o2", "delta", "x_music.npy", 22050,
        {"mfcc": mf_music, "delta": {"width": 9, "order": 2}})
    add("delta_chirp_w5_o1", "delta", "x_chirp.npy", 16000,
        {"mfcc": mf_chirp, "delta": {"width": 5, "order": 1}})
    add("delta_short_w5_o1_5frames", "delta", "x_short.npy", 16000,
        {"mfcc": mf_short, "delta": {"width": 5, "order": 1}})
    add("delta_short_w3_o2_5frames", "delta", "x_short.npy", 16000,
        {"mfcc": mf_short, "delta": {"width": 3, "order": 2}})

    # --- istft --------------------------------------------------------------
    def istft_p(hop, win, center, length):
        return {"hop_length": hop, "win_length": win, "window": "hann",
                "center": center, "length": length}

    add("istft_odd_n512_h128_c_lennone", "istft", "x_odd.npy", None,
        {"stft": _stft(512, 128), "istft": istft_p(128, None, True, None)})
    add("istft_odd_n512_h128_c_len3001", "istft", "x_odd.npy", None,
        {"stft": _stft(512, 128), "istft": istft_p(128, None, True, 3001)})
    add("istft_odd_n512_w400_h100_c_len3001", "istft", "x_odd.npy", None,
        {"stft": _stft(512, 100, 400), "istft": istft_p(100, 400, True, 3001)})
    add("istft_odd_n512_h128_nc_lennone", "istft", "x_odd.npy", None,
        {"stft": _stft(512, 128, None, "hann", False),
         "istft": istft_p(128, None, False, None)})
    add("istft_chirp_n512_h128_c_len3500", "istft", "x_chirp.npy", None,
        {"stft": _stft(512, 128), "istft": istft_p(128, None, True, 3500)})

    # --- griffinlim (init=None -> deterministic) ----------------------------
    add("gl_odd_n512_h128_it8_m099", "griffinlim", "x_odd.npy", None,
        {"stft": _stft(512, 128), "griffinlim": _gl_kw(8, 128, None, 0.99, 3001)})
    add("gl_odd_n512_w400_h100_it8_m0", "griffinlim", "x_odd.npy", None,
        {"stft": _stft(512, 100, 400), "griffinlim": _gl_kw(8, 100, 400, 0.0, 3001)})

    names = [c["name"] for c in C]
    assert len(names) == len(set(names)), "duplicate case names"
    for c in C:
        c["output"] = c["name"] + ".npy"
        assert (c["input"] is None) == (c["func"] == "mel_filters")
    return C


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------
def _db_kw(db):
    db = dict(db)
    if db["ref"] == "max":
        db["ref"] = np.max
    return db


def compute(case, inputs):
    f, p, sr = case["func"], case["params"], case["sr"]
    y = inputs[case["input"]] if case["input"] is not None else None
    if y is not None:
        assert y.dtype == np.float32

    if f == "stft":
        D = librosa.stft(y, **p)
        assert D.dtype == np.complex64
        out = np.stack([D.real, D.imag], axis=-1)
    elif f == "magnitude":
        out = np.abs(librosa.stft(y, **p))
    elif f == "power":
        out = np.abs(librosa.stft(y, **p)) ** 2
    elif f == "mel_filters":
        out = librosa.filters.mel(sr=sr, **p)
    elif f == "melspectrogram":
        out = librosa.feature.melspectrogram(y=y, sr=sr, **p)
    elif f == "power_to_db":
        S = librosa.feature.melspectrogram(y=y, sr=sr, **p["mel"])
        out = librosa.power_to_db(S, **_db_kw(p["db"]))
    elif f == "amplitude_to_db":
        S = np.abs(librosa.stft(y, **p["stft"]))
        out = librosa.amplitude_to_db(S, **_db_kw(p["db"]))
    elif f == "mfcc":
        out = librosa.feature.mfcc(y=y, sr=sr, **p)
    elif f == "delta":
        M = librosa.feature.mfcc(y=y, sr=sr, **p["mfcc"])
        out = librosa.feature.delta(M, **p["delta"])
    elif f == "istft":
        out = librosa.istft(librosa.stft(y, **p["stft"]), **p["istft"])
    elif f == "griffinlim":
        S = np.abs(librosa.stft(y, **p["stft"]))
        out = librosa.griffinlim(S, **p["griffinlim"])
    else:
        raise ValueError(f"unknown func {f}")

    out = np.asarray(out)
    # Every librosa output here is float32 already; make sure nothing was
    # silently computed in float64.
    assert out.dtype == np.float32, (case["name"], out.dtype)
    assert np.all(np.isfinite(out)), case["name"]
    return np.ascontiguousarray(out, dtype="<f4")


def _save(path, arr):
    np.save(path, np.ascontiguousarray(arr, dtype="<f4"), allow_pickle=False)


def generate(outdir):
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    _check_pad_mode_support()

    for name, arr in make_inputs().items():
        _save(outdir / name, arr)
    # Reload: all computation uses exactly the float32 arrays on disk.
    inputs = {name: np.load(outdir / name) for name in INPUT_SR}

    cases = build_cases()
    with warnings.catch_warnings():
        # (filterwarnings prepends: the later "ignore" takes precedence)
        warnings.filterwarnings("error")  # e.g. "Empty filters detected"
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large")
        for c in cases:
            out = compute(c, inputs)
            c["shape"] = list(out.shape)
            _save(outdir / c["output"], out)

    meta = {"librosa_version": librosa.__version__,
            "numpy_version": np.__version__,
            "cases": cases}
    text = json.dumps(meta, indent=1, allow_nan=False) + "\n"
    (outdir / "cases.json").write_text(text)

    total = 0
    for p in sorted(outdir.iterdir()):
        size = p.stat().st_size
        total += size
        if size >= MAX_FILE_BYTES:
            raise RuntimeError(f"{p.name} is {size} bytes (limit {MAX_FILE_BYTES})")
    if total >= MAX_TOTAL_BYTES:
        raise RuntimeError(f"fixtures total {total} bytes (limit {MAX_TOTAL_BYTES})")
    return cases, total


def _same_values(a, b):
    """True when ``a`` equals the committed ``b`` up to rounding: ``max |a - b| <= RTOL * max
    |b| + ATOL``. Scaled by the array's maximum, not element-wise, because librosa's matrix
    products round differently with the BLAS kernel that OpenBLAS picks for the CPU: on
    2026-12-07 (AMD EPYC, numpy 2.4.6, OpenBLAS 0.3.31 DYNAMIC_ARCH) the regenerated
    fixtures differed from those of 2026-11-26 by up to 6e-5 in MFCCs of magnitude ~500, and
    element-wise ``allclose`` failed on coefficients near zero."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a64.size == 0:
        return True
    return bool(np.max(np.abs(a64 - b64)) <= RTOL * np.max(np.abs(b64)) + ATOL)


def check():
    if not FIXTURE_DIR.is_dir():
        print(f"STALE: {FIXTURE_DIR} does not exist", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="librosa_golden_"))
    try:
        generate(tmp)
        problems = []
        want = {p.name for p in tmp.iterdir()}
        have = {p.name for p in FIXTURE_DIR.iterdir()}
        for n in sorted(want - have):
            problems.append(f"missing fixture file: {n}")
        for n in sorted(have - want):
            problems.append(f"unexpected fixture file: {n}")
        if "cases.json" in have and \
                (tmp / "cases.json").read_bytes() != (FIXTURE_DIR / "cases.json").read_bytes():
            problems.append("cases.json differs (case list, params, shapes or versions)")
        for n in sorted(want & have):
            if not n.endswith(".npy"):
                continue
            a = np.load(tmp / n, allow_pickle=False)
            b = np.load(FIXTURE_DIR / n, allow_pickle=False)
            if a.dtype != b.dtype or a.shape != b.shape:
                problems.append(f"{n}: dtype/shape {b.dtype}{b.shape} != {a.dtype}{a.shape}")
            elif not _same_values(a, b):
                err = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
                problems.append(f"{n}: values differ (max abs diff {err:.3g})")
        if problems:
            print("STALE librosa fixtures in " + str(FIXTURE_DIR.relative_to(REPO_ROOT)) + ":",
                  file=sys.stderr)
            for msg in problems:
                print("  " + msg, file=sys.stderr)
            print("Regenerate with: /opt/venv-torch-2.11.0/bin/python scripts/librosa_golden.py",
                  file=sys.stderr)
            return 1
        print(f"OK: {len(want)} fixture files are current "
              f"(librosa {librosa.__version__}, numpy {np.__version__})")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare with the committed fixtures")
    args = ap.parse_args(argv)
    if args.check:
        return check()
    # Generate into a temporary folder first: a failure leaves the committed fixtures alone.
    tmp = Path(tempfile.mkdtemp(prefix="librosa_golden_"))
    try:
        cases, total = generate(tmp)
        FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
        # Remove stale outputs of renamed/deleted cases.
        for p in FIXTURE_DIR.iterdir():
            if p.is_file() and (p.suffix == ".npy" or p.name == "cases.json") \
                    and not (tmp / p.name).exists():
                p.unlink()
        kept = 0
        for p in sorted(tmp.iterdir()):
            dst = FIXTURE_DIR / p.name
            if p.suffix == ".npy" and dst.exists():
                a, b = np.load(p), np.load(dst)
                # the same values up to this CPU's rounding: keep the committed bytes
                if a.dtype == b.dtype and a.shape == b.shape and _same_values(a, b):
                    kept += 1
                    continue
            shutil.copyfile(p, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"kept {kept} committed files whose values are current")
    print(f"wrote {len(cases)} cases + {len(INPUT_SR)} inputs to "
          f"{FIXTURE_DIR.relative_to(REPO_ROOT)} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

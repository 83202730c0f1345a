#!/usr/bin/env python3
"""W2 log-mel on a CUDA GPU: mm's tensor path against PyTorch on the same card, in one run.

Runs on the GPU machine from the bundle (`cargo xtask gpu-bundle` copies this script and the
`signal-workloads` tool next to `run.sh`):

    $TORCH_VENV/bin/python gpu_w2_torch.py --mm ./signal-workloads [--repeat 10]

W2 (see docs/benchmarks.md): 256 clips x 10 s at 16 kHz, n_fft 512, win 400, hop 160, periodic
Hann, centred with zero padding, power, 80 Slaney mels 0-8000 Hz (Slaney norm), dB with
amin 1e-10 and top_db 80 per clip. The batch is resident on the GPU; times are best-of after
warm-up with the device synchronised. PyTorch is timed as torchaudio's MelSpectrogram +
AmplitudeToDB when torchaudio is installed, and always as the same ops written with torch.stft
(which is what torchaudio runs). Needs only torch.
"""
import argparse
import json
import math
import subprocess
import sys
import time

import torch

CLIPS, SECONDS, SR = 256, 10, 16000
N_FFT, WIN, HOP, N_MELS, FMIN, FMAX = 512, 400, 160, 80, 0.0, 8000.0


def hz_to_mel(f):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return min_log_mel + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp


def mel_to_hz(m):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return min_log_hz * math.exp(logstep * (m - min_log_mel)) if m >= min_log_mel else f_sp * m


def slaney_mel_fb(device):
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (Slaney scale and norm), float32."""
    n_bins = N_FFT // 2 + 1
    fft_f = torch.linspace(0, SR / 2, n_bins, dtype=torch.float64)
    lo, hi = hz_to_mel(FMIN), hz_to_mel(FMAX)
    mel_f = torch.tensor([mel_to_hz(lo + (hi - lo) * i / (N_MELS + 1)) for i in range(N_MELS + 2)],
                         dtype=torch.float64)
    fdiff = mel_f[1:] - mel_f[:-1]
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = torch.clamp(torch.minimum(lower, upper), min=0).float()
    enorm = 2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS])
    return (w.double() * enorm[:, None]).float().to(device)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_ms(fn, repeat):
    for _ in range(3):
        fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, (time.perf_counter() - t) * 1e3)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mm", help="path of the signal-workloads tool (skipped if absent)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu only to try the script where there is no GPU")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("CUDA not available", file=sys.stderr)
        return 1
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}")
    g = torch.Generator(device="cpu").manual_seed(1)
    x = (0.1 * torch.randn(CLIPS, SECONDS * SR, generator=g)).to(dev)
    window = torch.hann_window(WIN, periodic=True, device=dev)
    fb = slaney_mel_fb(dev)

    @torch.inference_mode()
    def torch_ops():
        s = torch.stft(x, N_FFT, HOP, WIN, window, center=True, pad_mode="constant",
                       return_complex=True)
        m = fb @ (s.real.square() + s.imag.square())
        db = 10.0 * torch.log10(torch.clamp(m, min=1e-10))
        return torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0)

    rows = {"torch.stft ops": best_ms(torch_ops, a.repeat)}
    try:
        import torchaudio

        ms = torchaudio.transforms.MelSpectrogram(
            sample_rate=SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, f_min=FMIN, f_max=FMAX,
            n_mels=N_MELS, power=2.0, center=True, pad_mode="constant", norm="slaney",
            mel_scale="slaney").to(dev)
        to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80).to(dev)

        @torch.inference_mode()
        def ta():
            return to_db(ms(x).unsqueeze(1))

        rows[f"torchaudio {torchaudio.__version__}"] = best_ms(ta, a.repeat)
    except ImportError:
        rows["torchaudio"] = None
    if a.mm:
        p = subprocess.run([a.mm, "--workload", "w2", "--device", a.device, "--repeat",
                            str(a.repeat)], capture_output=True, text=True)
        line = next((l for l in reversed(p.stdout.splitlines()) if l.startswith("{")), None)
        if p.returncode != 0 or line is None:
            print(f"mm tool failed: {p.stderr.strip()[-300:]}", file=sys.stderr)
            return 1
        rows["mm (tensor path)"] = json.loads(line)["total_ms"]
    print(f"W2 on {a.device}: {CLIPS} clips x {SECONDS} s, log-mel, batch resident; best of {a.repeat}")
    mm = rows.get("mm (tensor path)")
    for k, v in rows.items():
        if v is None:
            print(f"  {k:28s} (not installed)")
        else:
            ratio = f"  ({v / mm:.2f}x mm's time)" if mm and k != "mm (tensor path)" else ""
            print(f"  {k:28s} {v:9.2f} ms  {CLIPS / v * 1e3:9.0f} clips/s{ratio}")
    print(json.dumps({"w2_gpu_ms": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Captioning training step time: mm's Show, Attend and Tell against an equivalent PyTorch model.

    cargo build --release -p mm-cli
    /opt/venv-mm-ref/bin/python scripts/bench_captioning.py --data data/synthav.h5 \
        [--mm target/release/mm] [--steps 60] [--threads 2] [--device cpu|cuda] [--repeat 2]

Same data (SynthAV images and captions, h5py into memory), same model as `mm train captioning`'s
defaults: the small CNN 32-64-128 (batch norm) giving an 8x8x128 map; mean-annotation tanh
initialisation of h and c; soft attention (encoder_att, decoder_att, full_att, tanh, softmax)
with the f_beta gate; an LSTM cell on [embedding; context] (64 + 128 -> 512); the deep output
layer (embedding + L_h h + L_z z, dropout 0.1, linear to the vocabulary); teacher forcing with
one random caption per image, cross-entropy over the words plus the doubly stochastic penalty
sum_i (1 - sum_t alpha_ti)^2; Adam 2e-3, clipping at 5; batch 64, full batches. Time: training
steps only, after 5 warm-up steps, as mm's summary.json `samples_per_sec` counts them (mm
leaves out 10). mm sets glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; give PyTorch the same with
MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 for a like-for-like
comparison (`cargo xtask bench` does).
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (alternate, mm_samples_per_sec, parse_args, read_train,  # noqa: E402
                          timed_training)


def load(path):
    images, params, (caps,) = read_train(path, "captions")
    words = params["vocabulary"]
    return images, caps, len(words), words.index("<start>"), words.index("<end>")


class Sat(nn.Module):
    def __init__(self, vocab, m=64, n=512, d=128, att=128, dropout=0.1):
        super().__init__()
        layers, c = [], 3
        for w in (32, 64, 128):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.cnn = nn.Sequential(*layers)
        self.embed = nn.Embedding(vocab, m)
        self.init_h, self.init_c = nn.Linear(d, n), nn.Linear(d, n)
        self.encoder_att, self.decoder_att, self.full_att = nn.Linear(d, att), nn.Linear(n, att), nn.Linear(att, 1)
        self.f_beta = nn.Linear(n, d)
        self.cell = nn.LSTMCell(m + d, n)
        self.l_h, self.l_z, self.out = nn.Linear(n, m), nn.Linear(d, m), nn.Linear(m, vocab)
        self.dropout = dropout

    def loss(self, u8, inp, tgt, mask, alpha_c=1.0):
        mean = torch.tensor([0.485, 0.456, 0.406], device=u8.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=u8.device).view(1, 3, 1, 1)
        x = (u8.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        a = self.cnn(x).flatten(2).transpose(1, 2)  # [N, L, D]
        mean_a = a.mean(1)
        h, c = torch.tanh(self.init_h(mean_a)), torch.tanh(self.init_c(mean_a))
        enc = self.encoder_att(a)
        nll, alphas = 0.0, 0.0
        for t in range(inp.size(0)):
            e = self.full_att(torch.tanh(enc + self.decoder_att(h).unsqueeze(1))).squeeze(2)
            alpha = e.softmax(1)
            z = (a * alpha.unsqueeze(2)).sum(1) * torch.sigmoid(self.f_beta(h))
            emb = self.embed(inp[t])
            h, c = self.cell(torch.cat([emb, z], 1), (h, c))
            logp = self.out(F.dropout(emb + self.l_h(h) + self.l_z(z), self.dropout, self.training)).log_softmax(1)
            nll = nll - (logp.gather(1, tgt[t].unsqueeze(1)).squeeze(1) * mask[t]).sum()
            alphas = alphas + alpha * mask[t].unsqueeze(1)
        return nll / mask.sum() + alpha_c * ((1 - alphas) ** 2).sum(1).mean()


def torch_run(images, caps, vocab, start, end, steps, batch, device, seed=0):
    torch.manual_seed(seed)
    model = Sat(vocab).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    imgs = torch.from_numpy(images)
    rng = np.random.default_rng(seed)

    def loss(idx):
        chosen = [[w for w in caps[i][rng.integers(len(caps[i]))] if w not in (start, end)] for i in idx]
        steps_t = max(len(cc) for cc in chosen) + 1
        inp = torch.full((steps_t, len(idx)), start, dtype=torch.long)
        tgt = torch.zeros((steps_t, len(idx)), dtype=torch.long)
        mask = torch.zeros((steps_t, len(idx)))
        for k, cc in enumerate(chosen):
            for t in range(len(cc) + 1):
                inp[t, k] = start if t == 0 else cc[t - 1]
                tgt[t, k] = cc[t] if t < len(cc) else end
                mask[t, k] = 1.0
        return model.loss(imgs[torch.from_numpy(idx)].to(device), inp.to(device), tgt.to(device), mask.to(device))

    return timed_training(model, opt, loss, len(caps), batch, steps, 5, 5.0, device, rng)


def main():
    args = parse_args(60)
    torch.set_num_threads(args.threads)
    images, caps, vocab, start, end = load(args.data)
    print(f"# captioning training, {len(caps)} training images, batch 64, {args.steps} steps, "
          f"{args.threads} threads, {args.device}; torch {torch.__version__}")
    alternate(args.repeat,
              lambda: torch_run(images, caps, vocab, start, end, args.steps, 64, args.device),
              (lambda: mm_samples_per_sec(args.mm, "captioning", args.data, args.steps, args.threads,
                                          args.device, ["task.beam_size=1"]))
              if args.mm else None,
              device=args.device)

if __name__ == "__main__":
    main()

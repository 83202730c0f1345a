#!/usr/bin/env python3
"""VQA training step time: mm against an equivalent PyTorch script on the same data and device.

    cargo build --release -p mm-cli
    /opt/venv-mm-ref/bin/python scripts/bench_vqa.py --data data/synthav.h5 \
        [--mm target/release/mm] [--steps 150] [--threads 2] [--device cpu|cuda] [--repeat 2]

Same data (SynthAV's images and questions, read with h5py into memory), same model as mm's
default `mm train vqa`: the small CNN 32-64-128 (batch norm, global average pool), L2-normalised;
64-d word vectors into a 128-unit LSTM, last hidden state; Hadamard fusion (tanh(W_v v) *
tanh(W_q q), 256-d); dropout 0.3, a 256-d tanh layer, dropout, a classifier over the answers;
cross-entropy against one-hot targets; Adam 2e-3, clipping at 5; batch 128, full batches. Time:
training steps only, after 10 warm-up steps, as mm's summary.json `samples_per_sec` counts them.
Without --mm only PyTorch runs. mm sets glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
(mm_train::malloc); give PyTorch the same with MALLOC_MMAP_THRESHOLD_=1073741824
MALLOC_TRIM_THRESHOLD_=1073741824 for a like-for-like comparison (`cargo xtask bench` does).
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (alternate, mm_samples_per_sec, pad, parse_args, read_train,  # noqa: E402
                          timed_training)


def load(path):
    images, params, (qs, ans) = read_train(path, "questions", "answers")
    items = [(i, q, int(a[0])) for i, (qq, aa) in enumerate(zip(qs, ans)) for q, a in zip(qq, aa)]
    return images, items, len(params["vocabulary"])


class Model(nn.Module):
    def __init__(self, vocab, n_answers):
        super().__init__()
        layers, c = [], 3
        for w in (32, 64, 128):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.cnn = nn.Sequential(*layers)
        self.emb = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.pv, self.pq = nn.Linear(128, 256), nn.Linear(128, 256)
        self.hidden, self.out = nn.Linear(256, 256), nn.Linear(256, n_answers)

    def forward(self, u8, ids, lens):
        mean = torch.tensor([0.485, 0.456, 0.406], device=u8.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=u8.device).view(1, 3, 1, 1)
        x = (u8.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        v = F.normalize(self.cnn(x).mean(dim=(2, 3)), dim=-1)
        out, _ = self.lstm(self.emb(ids))
        q = out.gather(1, (lens - 1).view(-1, 1, 1).expand(-1, 1, out.size(2))).squeeze(1)
        h = torch.tanh(self.pv(v)) * torch.tanh(self.pq(q))
        h = torch.tanh(self.hidden(F.dropout(h, 0.3, self.training)))
        return self.out(F.dropout(h, 0.3, self.training))


def torch_run(images, items, vocab, steps, batch, device, seed=0):
    torch.manual_seed(seed)
    answers = sorted({a for _, _, a in items})
    index = {a: k for k, a in enumerate(answers)}
    model = Model(vocab, len(answers)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    imgs = torch.from_numpy(images)
    rng = np.random.default_rng(seed)

    def loss(idx):
        sel = [items[i] for i in idx]
        ids, lens = pad([q for _, q, _ in sel])
        img = imgs[torch.tensor([i for i, _, _ in sel])].to(device)
        target = torch.tensor([index[a] for _, _, a in sel], device=device)
        return F.cross_entropy(model(img, ids.to(device), lens.to(device)), target)

    return timed_training(model, opt, loss, len(items), batch, steps, 10, 5.0, device, rng)


def main():
    args = parse_args(150)
    torch.set_num_threads(args.threads)
    images, items, vocab = load(args.data)
    print(f"# VQA training, {len(items)} training questions, batch 128, {args.steps} steps, "
          f"{args.threads} threads, {args.device}; torch {torch.__version__}")
    alternate(args.repeat,
              lambda: torch_run(images, items, vocab, args.steps, 128, args.device),
              (lambda: mm_samples_per_sec(args.mm, "vqa", args.data, args.steps, args.threads, args.device))
              if args.mm else None,
              device=args.device)

if __name__ == "__main__":
    main()

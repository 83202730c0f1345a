#!/usr/bin/env python3
"""Training throughput of the retrieval task: mm against an equivalent PyTorch script.

    cargo build --release -p mm-cli
    /opt/venv-mm-ref/bin/python scripts/bench_retrieval.py --data data/synthav.h5 \
        [--mm target/release/mm] [--steps 150] [--threads 2] [--device cpu|cuda] [--repeat 2]

Same data (the SynthAV HDF5 file, read with h5py into memory as mm does), same model (the
small CNN 32-64-128 with batch norm, global average pool, 128-d projection; 64-d word vectors
into a 128-unit GRU, dropout 0.1, 128-d projection; both L2-normalised), same loss (VSE++,
sum over negatives: the warm-up phase of mm's default, which costs as much as the hardest-
negative phase), Adam at 2e-3, gradient clipping at 2.0, batch 64, one random caption per
image, full batches only (drop_last). Time: the training steps only (batch assembly, forward, backward, clipping, update),
not evaluation, and not the first 10 steps, as mm's summary.json `samples_per_sec` counts them. mm runs as
`mm train retrieval --set train.max_steps=N`, without skip-gram initialisation (a one-off
before training); both sides use --threads intra-op threads. Without --mm, only PyTorch runs.

Allocator: `mm` sets glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD to 1 GiB at start
(mm_train::malloc); run this script a second time with MALLOC_MMAP_THRESHOLD_=1073741824
MALLOC_TRIM_THRESHOLD_=1073741824 in the environment to give PyTorch the same settings, and
report both (`cargo xtask bench` gives PyTorch mm's settings).
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
    images, params, (caps,) = read_train(path, "captions")
    return images, caps, params.get("vocabulary")


class SmallCnn(nn.Module):
    def __init__(self, widths=(32, 64, 128)):
        super().__init__()
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).mean(dim=(2, 3))


class Joint(nn.Module):
    def __init__(self, vocab, word_dim=64, hidden=128, embed=128):
        super().__init__()
        self.cnn = SmallCnn()
        self.iproj = nn.Linear(128, embed)
        self.emb = nn.Embedding(vocab, word_dim)
        self.gru = nn.GRU(word_dim, hidden, batch_first=True)
        self.tproj = nn.Linear(hidden, embed)

    def images(self, u8, device):
        mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
        x = (u8.to(device).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        return F.normalize(self.iproj(self.cnn(x)), dim=-1)

    def text(self, ids, lens):
        out, _ = self.gru(self.emb(ids))
        h = out.gather(1, (lens - 1).view(-1, 1, 1).expand(-1, 1, out.size(2))).squeeze(1)
        return F.normalize(self.tproj(F.dropout(h, 0.1, self.training)), dim=-1)


def vsepp_sum(im, s, margin=0.2):
    scores = im @ s.t()
    d = scores.diag().view(-1, 1)
    cost_s = (margin + scores - d).clamp(min=0)
    cost_im = (margin + scores - d.t()).clamp(min=0)
    eye = torch.eye(scores.size(0), dtype=torch.bool, device=scores.device)
    return cost_s.masked_fill(eye, 0).sum() + cost_im.masked_fill(eye, 0).sum()


def torch_run(images, caps, vocab_size, steps, batch, device, seed=0):
    torch.manual_seed(seed)
    model = Joint(vocab_size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    imgs = torch.from_numpy(images)
    rng = np.random.default_rng(seed)

    def loss(idx):
        ids, lens = pad([caps[i][rng.integers(len(caps[i]))] for i in idx])
        im = model.images(imgs[torch.from_numpy(idx)], device)
        return vsepp_sum(im, model.text(ids.to(device), lens.to(device)))

    return timed_training(model, opt, loss, len(caps), batch, steps, 10, 2.0, device, rng)


def main():
    args = parse_args(150)
    torch.set_num_threads(args.threads)
    images, caps, vocab = load(args.data)
    vocab_size = len(vocab) if vocab else int(max(int(c.max()) for cs in caps for c in cs)) + 1
    print(f"# retrieval training throughput, {len(caps)} training images, batch 64, {args.steps} "
          f"steps, {args.threads} threads, {args.device}; torch {torch.__version__}")
    sets = ["task.word2vec_init=false", f"task.sum_warmup_epochs={args.steps}"]
    alternate(args.repeat,
              lambda: torch_run(images, caps, vocab_size, args.steps, 64, args.device),
              (lambda: mm_samples_per_sec(args.mm, "retrieval", args.data, args.steps, args.threads,
                                          args.device, sets))
              if args.mm else None,
              device=args.device)

if __name__ == "__main__":
    main()

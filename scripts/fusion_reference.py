#!/usr/bin/env python3
"""Generate the PyTorch reference fixture for the `mm-fusion` crate.

Usage (from the repository root)::

    /opt/venv-mm-ref/bin/python scripts/fusion_reference.py           # (re)write the fixture
    /opt/venv-mm-ref/bin/python scripts/fusion_reference.py --check   # verify it is current

(The venv is described in ``scripts/requirements-ref.txt``; only torch and numpy are used.)

Output: ``crates/mm-fusion/tests/fixtures/reference.json``, read by
``crates/mm-fusion/tests/reference.rs``. One top-level key per case:

* ``contrastive``   pairwise contrastive loss (Hadsell et al. 2006, without the 1/2 factors,
                    mean over pairs, d = Euclidean distance)
* ``triplet``       VSE++ ``ContrastiveLoss`` (vsepp/model.py, ported below), max_violation
                    True ("hardest") and False ("sum"); a sum over the batch
* ``info_nce``      CLIP's symmetric cross-entropy with ``exp(logit_scale)``
* ``kl``            ``F.kl_div(F.log_softmax(s/T), target, reduction='batchmean') * T*T`` with
                    ``target = softmax(t/T)`` (teacher logits) or ``softmax(log(p)/T)`` (teacher
                    probabilities)
* ``sdpa``          ``F.scaled_dot_product_attention`` (outputs) and the softmax weights, with
                    and without a bool mask (True = attend) that fully masks one query
* ``soft_attention`` Show, Attend and Tell soft attention (tanh, scalar f_beta gate) with given
                    weights named like the Rust module, with and without a location mask
* ``mha``           ``torch.nn.MultiheadAttention(8, 2, batch_first=True)`` with given weights
                    (its state-dict names), averaged and per-head weights, with and without a
                    mask (stored as True = attend; torch's attn_mask is its negation)
* ``retrieval``     VSE++ ``i2t``/``t2i`` (evaluation.py, reimplemented below on a score
                    matrix) for 5 captions per image, and a general caption->image mapping

Every input is drawn from a seeded ``np.random.RandomState`` (whose stream numpy keeps stable),
rounded to float32 and stored; every reference value is computed in float64 from exactly those
float32 values. Rust tests run the float64 path against a tight tolerance and the float32 path
against ~1e-5 relative. Ranks are stored 1-based.

``--check`` recomputes everything and compares with the committed fixture (same keys and
shapes, inputs and integers exactly, floats with rtol=1e-9, atol=1e-12); exit 1 if stale.
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "crates" / "mm-fusion" / "tests" / "fixtures" / "reference.json"
MAX_BYTES = 100_000
RTOL, ATOL = 1e-9, 1e-12

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------------------------------------
# helpers

def f32(rng, *shape, scale=1.0):
    """Standard normal float32 values (times `scale`), as a float32 numpy array."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def unit_rows(x):
    """L2-normalise rows in float64, then round to float32 (the stored input)."""
    x = x.astype(np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def t64(x):
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def out(t):
    """A float64 tensor or array as nested lists."""
    if isinstance(t, torch.Tensor):
        t = t.detach().numpy()
    return np.asarray(t, dtype=np.float64).tolist()


def inp(x):
    """A float32 input as nested lists of exactly its float32 values."""
    return np.asarray(x, dtype=np.float32).astype(np.float64).tolist()


# ---------------------------------------------------------------------------------------------
# losses

def contrastive_case():
    rng = np.random.RandomState(101)
    a, b = unit_rows(f32(rng, 6, 4)), unit_rows(f32(rng, 6, 4))
    same = np.array([1, 0, 1, 0, 0, 1], dtype=np.int64)
    margin = 1.5
    d = torch.linalg.vector_norm(t64(a) - t64(b), dim=1)
    s = t64(same)
    loss = (s * d.pow(2) + (1 - s) * (margin - d).clamp(min=0).pow(2)).mean()
    assert 0 < ((1 - s) * (margin - d).clamp(min=0)).count_nonzero() < 3, "margin inactive"
    return {"a": inp(a), "b": inp(b), "same": same.tolist(), "margin": margin,
            "loss": loss.item()}


class VseppContrastiveLoss(torch.nn.Module):
    """vsepp/model.py `ContrastiveLoss` (measure='cosine'), ported to current PyTorch: the
    `Variable`/`.cuda()` wrapping is dropped, nothing else changes."""

    def __init__(self, margin=0, max_violation=False):
        super().__init__()
        self.margin = margin
        self.max_violation = max_violation

    def forward(self, im, s):
        scores = im.mm(s.t())
        diagonal = scores.diag().view(im.size(0), 1)
        d1 = diagonal.expand_as(scores)
        d2 = diagonal.t().expand_as(scores)
        cost_s = (self.margin + scores - d1).clamp(min=0)
        cost_im = (self.margin + scores - d2).clamp(min=0)
        mask = torch.eye(scores.size(0)) > .5
        cost_s = cost_s.masked_fill_(mask, 0)
        cost_im = cost_im.masked_fill_(mask, 0)
        if self.max_violation:
            cost_s = cost_s.max(1)[0]
            cost_im = cost_im.max(0)[0]
        return cost_s.sum() + cost_im.sum()


def triplet_case():
    rng = np.random.RandomState(102)
    im, s = unit_rows(f32(rng, 6, 4)), unit_rows(f32(rng, 6, 4))
    margin = 0.2
    hardest = VseppContrastiveLoss(margin, max_violation=True)(t64(im), t64(s))
    total = VseppContrastiveLoss(margin, max_violation=False)(t64(im), t64(s))
    return {"im": inp(im), "s": inp(s), "margin": margin,
            "hardest": hardest.item(), "sum": total.item()}


def info_nce_case():
    rng = np.random.RandomState(103)
    a, b = unit_rows(f32(rng, 6, 4)), unit_rows(f32(rng, 6, 4))
    logit_scale = float(np.float32(math.log(1 / 0.07)))
    # CLIP, figure 3 / open_clip ClipLoss
    logits_per_image = math.exp(logit_scale) * t64(a) @ t64(b).t()
    labels = torch.arange(6)
    loss = (F.cross_entropy(logits_per_image, labels)
            + F.cross_entropy(logits_per_image.t(), labels)) / 2
    return {"a": inp(a), "b": inp(b), "logit_scale": logit_scale, "loss": loss.item()}


def kl_case():
    rng = np.random.RandomState(104)
    student, teacher = f32(rng, 5, 7, scale=2.0), f32(rng, 5, 7, scale=2.0)
    probs = torch.softmax(t64(teacher), dim=1).numpy().astype(np.float32)

    def kl(target, t):
        return (F.kl_div(F.log_softmax(t64(student) / t, dim=1), target,
                         reduction="batchmean") * t * t).item()

    cases = []
    for t in (1.0, 2.0, 4.0):
        cases.append({"teacher": "logits", "temperature": t,
                      "loss": kl(torch.softmax(t64(teacher) / t, dim=1), t)})
        cases.append({"teacher": "probs", "temperature": t,
                      "loss": kl(torch.softmax(torch.log(t64(probs)) / t, dim=1), t)})
    return {"student": inp(student), "teacher_logits": inp(teacher),
            "teacher_probs": inp(probs), "cases": cases}


# ---------------------------------------------------------------------------------------------
# attention

def masked_softmax(scores, mask):
    """Softmax with mask (True = attend); fully masked rows become zeros."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.where(mask, w, torch.zeros_like(w))


def sdpa_case():
    rng = np.random.RandomState(105)
    q, k, v = f32(rng, 2, 3, 4), f32(rng, 2, 5, 4), f32(rng, 2, 5, 3)
    mask = rng.uniform(size=(2, 3, 5)) < 0.6
    mask[0, 1, :] = False  # a fully masked query
    mask[1, :, 0] = True   # every other query keeps a key
    result = {"q": inp(q), "k": inp(k), "v": inp(v), "mask": mask.tolist()}
    for name, m in (("plain", None), ("masked", torch.from_numpy(mask))):
        o = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=m)
        w = masked_softmax(t64(q) @ t64(k).transpose(1, 2) / math.sqrt(4), m)
        assert torch.allclose(w @ t64(v), o, rtol=1e-12, atol=1e-14)
        result[name] = {"output": out(o), "weights": out(w)}
    return result


class SoftAttention(torch.nn.Module):
    """Show, Attend and Tell soft attention as in sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning
    `Attention`, with the paper's tanh and scalar gate beta = sigmoid(f_beta(h))."""

    def __init__(self, feature_dim, hidden_dim, attention_dim):
        super().__init__()
        self.encoder_att = torch.nn.Linear(feature_dim, attention_dim)
        self.decoder_att = torch.nn.Linear(hidden_dim, attention_dim)
        self.full_att = torch.nn.Linear(attention_dim, 1)
        self.f_beta = torch.nn.Linear(hidden_dim, 1)

    def forward(self, features, hidden, mask=None):
        att1 = self.encoder_att(features)                          # [N, L, A]
        att2 = self.decoder_att(hidden)                            # [N, A]
        e = self.full_att(torch.tanh(att1 + att2.unsqueeze(1))).squeeze(2)  # [N, L]
        alpha = masked_softmax(e, mask)
        context = (features * alpha.unsqueeze(2)).sum(dim=1)       # [N, D]
        beta = torch.sigmoid(self.f_beta(hidden))                  # [N, 1]
        return beta * context, alpha, beta


def set_params(module, rng, scale=0.5):
    """Overwrite every parameter with float32-representable random values; return them."""
    params = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            x = f32(rng, *p.shape, scale=scale)
            p.copy_(t64(x))
            params[name] = inp(x)
    return params


def soft_attention_case():
    rng = np.random.RandomState(106)
    n, l, d, h, a = 2, 5, 4, 3, 6
    module = SoftAttention(d, h, a).double()
    params = set_params(module, rng)
    features, hidden = f32(rng, n, l, d), f32(rng, n, h)
    mask = np.array([[True, True, False, True, False], [False, True, True, True, True]])
    result = {"feature_dim": d, "hidden_dim": h, "attention_dim": a, "params": params,
              "features": inp(features), "hidden": inp(hidden), "mask": mask.tolist()}
    for name, m in (("plain", None), ("masked", torch.from_numpy(mask))):
        context, weights, gate = module(t64(features), t64(hidden), m)
        result[name] = {"context": out(context), "weights": out(weights), "gate": out(gate)}
    return result


def mha_case():
    rng = np.random.RandomState(107)
    e, heads, n, lq, lk = 8, 2, 2, 3, 4
    module = torch.nn.MultiheadAttention(e, heads, batch_first=True).double().eval()
    params = set_params(module, rng, scale=0.3)
    query, key, value = f32(rng, n, lq, e), f32(rng, n, lk, e), f32(rng, n, lk, e)
    mask = np.array([[True, True, False, False],
                     [True, False, True, False],
                     [False, True, True, True]])
    result = {"embed_dim": e, "num_heads": heads, "params": params, "query": inp(query),
              "key": inp(key), "value": inp(value), "mask": mask.tolist()}
    for name, m in (("plain", None), ("masked", ~torch.from_numpy(mask))):
        args = (t64(query), t64(key), t64(value))
        o, w = module(*args, attn_mask=m, need_weights=True, average_attn_weights=True)
        o2, hw = module(*args, attn_mask=m, need_weights=True, average_attn_weights=False)
        assert torch.equal(o, o2)
        result[name] = {"output": out(o), "weights": out(w), "head_weights": out(hw)}
    return result


# ---------------------------------------------------------------------------------------------
# retrieval

def vsepp_i2t(scores, k=5):
    """vsepp/evaluation.py `i2t` (measure='cosine'), on a score matrix [n_images, k*n_images]
    instead of (5N, K) embeddings: row `index` is `numpy.dot(images[5 * index], captions.T)`."""
    npts = scores.shape[0]
    ranks = np.zeros(npts)
    for index in range(npts):
        d = scores[index].flatten()
        inds = np.argsort(d)[::-1]
        rank = 1e20
        for i in range(k * index, k * index + k, 1):
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    return vsepp_metrics(ranks), ranks


def vsepp_t2i(scores, k=5):
    """vsepp/evaluation.py `t2i` (measure='cosine') on the same score matrix: the queries of
    image `index` are captions k*index .. k*index+k, `d = numpy.dot(queries, ims.T)`."""
    npts = scores.shape[0]
    ranks = np.zeros(k * npts)
    for index in range(npts):
        d = scores[:, k * index:k * index + k].T
        inds = np.zeros(d.shape)
        for i in range(len(inds)):
            inds[i] = np.argsort(d[i])[::-1]
            ranks[k * index + i] = np.where(inds[i] == index)[0][0]
    return vsepp_metrics(ranks), ranks


def vsepp_metrics(ranks):
    """The metric lines of vsepp/evaluation.py (0-based ranks in, VSE++'s tuple out)."""
    r1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
    r5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
    r10 = 100.0 * len(np.where(ranks < 10)[0]) / len(ranks)
    medr = np.floor(np.median(ranks)) + 1
    meanr = ranks.mean() + 1
    return {"r1": r1, "r5": r5, "r10": r10, "median_rank": float(medr),
            "mean_rank": float(meanr)}


def general_ranks(scores, image_of_caption):
    """The VSE++ rules for any caption->image mapping: i2t = best position of an own caption
    in the image's sorted row, t2i = position of the caption's image in its sorted column."""
    n_images = scores.shape[0]
    i2t = []
    for i in range(n_images):
        inds = np.argsort(scores[i])[::-1]
        own = [j for j, img in enumerate(image_of_caption) if img == i]
        i2t.append(min(int(np.where(inds == j)[0][0]) for j in own))
    t2i = []
    for j, img in enumerate(image_of_caption):
        inds = np.argsort(scores[:, j])[::-1]
        t2i.append(int(np.where(inds == img)[0][0]))
    return np.array(i2t, dtype=np.float64), np.array(t2i, dtype=np.float64)


def assert_tie_free(scores):
    for row in scores:
        assert len(np.unique(row)) == len(row), "tied scores make argsort order arbitrary"
    for col in scores.T:
        assert len(np.unique(col)) == len(col), "tied scores make argsort order arbitrary"


def retrieval_case():
    rng = np.random.RandomState(108)
    # 12 images, 5 noisy captions each, embeddings of size 8
    n_images, k, dim = 12, 5, 8
    im = unit_rows(f32(rng, n_images, dim))
    caps = unit_rows(np.repeat(im, k, axis=0) + f32(rng, n_images * k, dim, scale=0.45))
    scores = (im.astype(np.float64) @ caps.astype(np.float64).T).astype(np.float32)
    assert_tie_free(scores)
    i2t, i2t_ranks = vsepp_i2t(scores, k)
    t2i, t2i_ranks = vsepp_t2i(scores, k)
    assert 0 < i2t["r1"] < 100 and 0 < t2i["r1"] < 100, "make the case non-trivial"
    five = {"n_images": n_images, "k": k, "scores": inp(scores),
            "i2t": i2t, "i2t_ranks": (i2t_ranks + 1).astype(int).tolist(),
            "t2i": t2i, "t2i_ranks": (t2i_ranks + 1).astype(int).tolist()}

    # 6 images, 10 captions, uneven and shuffled mapping
    mapping = [0, 0, 0, 1, 2, 2, 3, 4, 4, 5]
    rng.shuffle(mapping)
    scores = f32(rng, 6, len(mapping))
    for j, img in enumerate(mapping):
        scores[img, j] += np.float32(1.0)
    assert_tie_free(scores)
    i2t_ranks, t2i_ranks = general_ranks(scores, mapping)
    general = {"n_images": 6, "image_of_caption": [int(m) for m in mapping],
               "scores": inp(scores),
               "i2t": vsepp_metrics(i2t_ranks),
               "i2t_ranks": (i2t_ranks + 1).astype(int).tolist(),
               "t2i": vsepp_metrics(t2i_ranks),
               "t2i_ranks": (t2i_ranks + 1).astype(int).tolist()}
    return {"five_captions": five, "general": general}


# ---------------------------------------------------------------------------------------------

def build():
    return {
        "generator": "scripts/fusion_reference.py",
        "torch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "contrastive": contrastive_case(),
        "triplet": triplet_case(),
        "info_nce": info_nce_case(),
        "kl": kl_case(),
        "sdpa": sdpa_case(),
        "soft_attention": soft_attention_case(),
        "mha": mha_case(),
        "retrieval": retrieval_case(),
    }


def dumps(fixture):
    """Compact JSON with one top-level key per line (small, diffable)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
             for k, v in fixture.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def compare(want, got, path="$"):
    """Differences between two fixtures, as messages."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(want) != set(got):
            return [f"{path}: keys differ"]
        return [m for k in want for m in compare(want[k], got[k], f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return [f"{path}: lengths differ"]
        return [m for i, (w, g) in enumerate(zip(want, got)) for m in compare(w, g, f"{path}[{i}]")]
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        ok = math.isclose(want, got, rel_tol=RTOL, abs_tol=ATOL)
        return [] if ok else [f"{path}: {got!r} != {want!r}"]
    return [] if want == got and type(want) is type(got) else [f"{path}: {got!r} != {want!r}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="verify the committed fixture instead of writing it")
    args = parser.parse_args()
    fixture = build()
    text = dumps(fixture)
    assert len(text.encode()) < MAX_BYTES, f"fixture is {len(text.encode())} bytes"
    if args.check:
        if not FIXTURE.exists():
            print(f"missing: {FIXTURE}")
            return 1
        committed = json.loads(FIXTURE.read_text())
        versions = ("torch_version", "numpy_version")
        if any(committed.get(v) != fixture[v] for v in versions):
            print("note: fixture made with torch {} / numpy {}, checking with {} / {}".format(
                committed.get("torch_version"), committed.get("numpy_version"),
                fixture["torch_version"], fixture["numpy_version"]))
        for v in versions:
            committed[v] = fixture[v]
        problems = compare(json.loads(text), committed)
        for p in problems[:20]:
            print(p)
        print("stale" if problems else "current", FIXTURE.relative_to(REPO_ROOT))
        return 1 if problems else 0
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(text)
    print(f"wrote {FIXTURE.relative_to(REPO_ROOT)} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

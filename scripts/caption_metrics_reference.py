#!/usr/bin/env python3
"""Reference caption metrics for mm-text's golden tests.

    /opt/venv-mm-ref/bin/pip install pycocoevalcap==1.2 nltk==3.10.4   (see requirements-ref.txt)
    /opt/venv-mm-ref/bin/python scripts/caption_metrics_reference.py \
        > crates/mm-text/tests/fixtures/caption_metrics.json

Fixed, pre-tokenised captions (lower case, space separated; the scorers below take tokens as
they are, PTBTokenizer, which needs Java, is not used): for each case, candidates and
references per image, and what the reference tools compute:
- coco-caption (pycocoevalcap 1.2): Bleu(4) with option "closest" (corpus and per image),
  Rouge (ROUGE-L, beta 1.2), Cider (coco-caption's CIDEr, which is CIDEr-D: clipped tf-idf,
  Gaussian length penalty sigma 6, x10);
- nltk 3.10.4: corpus_bleu with uniform weights for BLEU-1..4, no smoothing.
METEOR is not computed: its only reference implementation is Java.
"""
import json
import random

from nltk.translate.bleu_score import corpus_bleu
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

WORDS = ("a the red blue green small large circle square triangle left right of and on in "
         "beach city forest night there is two objects one object").split()


def synthetic_cases():
    rng = random.Random(7)
    cases = []
    # hand-made: exact match, shorter candidate (brevity penalty), clipping, no 4-gram match
    cases.append({
        "name": "hand",
        "candidates": [
            "a red circle on the beach",
            "a red circle",
            "the the the the the the",
            "two objects in the city a blue square",
            "a small green triangle at night",
        ],
        "references": [
            ["a red circle on the beach", "there is a red circle on the beach", "one object on the beach : a red circle"],
            ["a large red circle in the forest", "a red circle and a blue square", "there is a red circle"],
            ["the cat is on the mat", "there is a cat on the mat", "a cat sits on the mat"],
            ["a blue square in the city", "two objects in the city : a blue square and a red circle"],
            ["a small green triangle at night", "there is a small green triangle at night", "one object at night : a green triangle", "a green triangle"],
        ],
    })
    for k in range(3):
        n = 20
        cands, refs = [], []
        for _ in range(n):
            base = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
            r = []
            for _ in range(rng.randint(1, 5)):
                ref = [w if rng.random() < 0.7 else rng.choice(WORDS) for w in base]
                if rng.random() < 0.5:
                    ref = ref + [rng.choice(WORDS) for _ in range(rng.randint(0, 4))]
                r.append(" ".join(ref))
            cand = [w if rng.random() < 0.6 else rng.choice(WORDS) for w in base[: rng.randint(2, len(base))]]
            cands.append(" ".join(cand))
            refs.append(r)
        cases.append({"name": f"random{k}", "candidates": cands, "references": refs})
    return cases


def main():
    out = []
    for case in synthetic_cases():
        gts = {i: refs for i, refs in enumerate(case["references"])}
        res = {i: [c] for i, c in enumerate(case["candidates"])}
        bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, rouge_per = Rouge().compute_score(gts, res)
        cider, cider_per = Cider().compute_score(gts, res)
        hyps = [c.split() for c in case["candidates"]]
        refs = [[r.split() for r in rs] for rs in case["references"]]
        nltk_bleu = []
        for n in range(1, 5):
            w = tuple([1.0 / n] * n)
            nltk_bleu.append(corpus_bleu(refs, hyps, weights=w))
        out.append({
            **case,
            "coco_bleu": list(bleu),
            "coco_bleu_per_image": [list(x) for x in bleu_per],
            "rouge_l": float(rouge),
            "rouge_l_per_image": [float(x) for x in rouge_per],
            "cider_d": float(cider),
            "cider_d_per_image": [float(x) for x in cider_per],
            "nltk_bleu": nltk_bleu,
        })
    print(json.dumps({"tools": {"pycocoevalcap": "1.2", "nltk": "3.10.4"}, "cases": out}))


if __name__ == "__main__":
    main()

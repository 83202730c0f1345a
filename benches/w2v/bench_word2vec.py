#!/usr/bin/env python3
"""Benchmark mm's word2vec trainer against gensim and (optionally) word2vec.c.

Every tool trains skip-gram with negative sampling on the same corpus with the same
hyperparameters (size 100, window 5, negative 5, min-count 5, --sample, --iter), at
each thread count and seed; every model's vectors are written in word2vec text format
and scored with OUR evaluator (`mm text word2vec eval`), so all are scored alike.

  (a) ours:       $MM text word2vec train ...                     (--mm, default target/release/mm)
  (b) gensim:     gensim.models.Word2Vec(corpus_file=..., sg=1, hs=0, ...) run by
                  --gensim-python (default /opt/venv-w2v/bin/python); skipped if it
                  cannot import gensim
  (c) word2vec.c: $WORD2VEC_C -cbow 0 -hs 0 ... -binary 0 if the env var points to a
                  built binary (skipped otherwise).  word2vec.c has no seed option, so
                  it runs once per thread count (seed shown as "-").

Analogy accuracy is reported twice: on each model's own top --restrict words (what
compute-accuracy and gensim report), and, in the "common %" column, on the words that every
model of the run has in its top --restrict (`eval --within`), so that all answer the same
questions: tools order words of equal count differently (mm and word2vec.c as first seen,
gensim 4 in reverse), which changes a few hundred of the ~9,500 questions each one answers and,
on the same vectors, the score by about 0.3 points.

Wall time is the whole training job: vocabulary, training and writing the vectors
(for gensim it is timed inside the child, so interpreter start-up and import are
excluded).  words/s/thread = raw corpus words x iter / wall / threads.

Usage:
  benches/w2v/bench_word2vec.py --corpus data/w2v/corpus.txt \
      --analogies data/w2v/questions-words.txt --similarity data/w2v/wordsim353.tsv \
      [--threads 1,2] [--seeds 1] [--iter 5] [--sample 1e-3] [--out results.json]

Run it under `nice` on a shared machine.  Stdlib only (gensim lives in its own venv).
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

GENSIM_CHILD = r"""
import json, sys, time, logging
import gensim
from gensim.models import Word2Vec
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
m = Word2Vec(corpus_file=a["corpus"], vector_size=a["size"], window=a["window"],
             negative=a["negative"], hs=0, sg=1, sample=a["sample"],
             min_count=a["min_count"], epochs=a["iter"], workers=a["threads"],
             seed=a["seed"], alpha=0.025)
t1 = time.perf_counter()
m.wv.save_word2vec_format(a["output"], binary=False)
t2 = time.perf_counter()
print(json.dumps({"gensim": gensim.__version__, "train_s": t1 - t0, "wall_s": t2 - t0,
                  "vocab": len(m.wv), "fast_version": getattr(gensim.models.word2vec, "FAST_VERSION", None)}))
"""


def count_words(path):
    n = 0
    with open(path, "rb") as f:
        for line in f:
            n += len(line.split())
    return n


def run(cmd, log, **kw):
    t0 = time.perf_counter()
    with open(log, "w") as lf:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
        lf.write(" ".join(cmd) + "\n" + p.stdout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed (rc {p.returncode}); see {log}:\n{p.stdout[-2000:]}")
    return wall, p.stdout


def top_words(vectors, n):
    """The first n words of a text-format vector file other than </s>, lower-cased."""
    words = []
    with open(vectors, encoding="utf-8", errors="replace") as f:
        f.readline()
        for line in f:
            w = line.split(" ", 1)[0]
            if w != "</s>":
                words.append(w.lower())
            if len(words) >= n:
                break
    return set(words)


def evaluate(mm, vectors, a, log, within=None):
    cmd = [mm, "text", "word2vec", "eval", "--vectors", vectors,
           "--analogies", a.analogies, "--restrict", str(a.restrict), "--similarity", a.similarity]
    if within:
        cmd += ["--within", within]
    _, out = run(cmd, log)
    r = {"eval_output": out.strip()}
    m = re.search(r"analogies:\s*([\d.]+)\s*%\s*of\s*(\d+)\s*answered\s*\((\d+) questions", out)
    if m:
        r.update(analogy_pct=float(m.group(1)), analogy_answered=int(m.group(2)), analogy_questions=int(m.group(3)))
    m = re.search(r"similarity:\s*Spearman rho\s*(-?[\d.]+|nan|NaN)\s*over\s*(\d+)\s*of\s*(\d+)", out)
    if m:
        r.update(rho=float(m.group(1)), sim_pairs=int(m.group(2)), sim_total=int(m.group(3)))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--analogies", required=True)
    ap.add_argument("--similarity", required=True)
    ap.add_argument("--restrict", type=int, default=30000)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--seeds", default="1", help="comma-separated seeds")
    ap.add_argument("--iter", type=int, default=5)
    ap.add_argument("--sample", default="1e-3")
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--negative", type=int, default=5)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--mm", default=os.path.join(REPO, "target", "release", "mm"))
    ap.add_argument("--gensim-python", default="/opt/venv-w2v/bin/python")
    ap.add_argument("--tools", default="ours,gensim,c", help="subset of ours,gensim,c")
    ap.add_argument("--workdir", help="where vectors and logs go (default: a new temp dir)")
    ap.add_argument("--keep-vectors", action="store_true")
    ap.add_argument("--no-common", action="store_true",
                    help="skip re-scoring every model on the common question set (the words all "
                         "models have in their top --restrict); that needs every vector file "
                         "kept until the end")
    ap.add_argument("--out", help="write raw results as JSON here")
    a = ap.parse_args()

    threads = [int(x) for x in a.threads.split(",") if x]
    seeds = [int(x) for x in a.seeds.split(",") if x]
    tools = set(a.tools.split(","))
    work = a.workdir or tempfile.mkdtemp(prefix="w2v-bench-")
    os.makedirs(work, exist_ok=True)
    if not os.access(a.mm, os.X_OK):
        sys.exit(f"mm binary not found at {a.mm} (cargo build --release -p mm-cli)")

    if "gensim" in tools:
        ok = os.access(a.gensim_python, os.X_OK) and subprocess.run(
            [a.gensim_python, "-c", "import gensim"], capture_output=True).returncode == 0
        if not ok:
            print(f"# gensim: {a.gensim_python} cannot import gensim; skipped", file=sys.stderr)
            tools.discard("gensim")
    w2vc = os.environ.get("WORD2VEC_C")
    if "c" in tools and not (w2vc and os.access(w2vc, os.X_OK)):
        print("# word2vec.c: WORD2VEC_C not set to an executable; skipped", file=sys.stderr)
        tools.discard("c")

    words = count_words(a.corpus)
    print(f"# corpus {a.corpus}: {words} words; sg=1 size={a.size} window={a.window} negative={a.negative} "
          f"sample={a.sample} min_count={a.min_count} iter={a.iter}; work dir {work}", file=sys.stderr)

    results = []
    for t in threads:
        jobs = []
        for s in seeds:
            if "ours" in tools:
                jobs.append(("ours", s))
            if "gensim" in tools:
                jobs.append(("gensim", s))
        if "c" in tools:
            jobs.append(("word2vec.c", None))
        for tool, s in jobs:
            tag = f"{tool}-t{t}-s{s if s is not None else 'na'}"
            vec = os.path.join(work, tag + ".txt")
            log = os.path.join(work, tag + ".train.log")
            rec = {"tool": tool, "threads": t, "seed": s}
            print(f"# training {tag} ...", file=sys.stderr, flush=True)
            try:
                if tool == "ours":
                    cmd = [a.mm, "text", "word2vec", "train", "--train", a.corpus, "--output", vec,
                           "--size", str(a.size), "--window", str(a.window), "--negative", str(a.negative),
                           "--sample", str(a.sample), "--min-count", str(a.min_count), "--iter", str(a.iter),
                           "--threads", str(t), "--cbow", "0", "--seed", str(s)]
                    wall, out = run(cmd, log)
                    rec["tool_output"] = out.strip().splitlines()[-1] if out.strip() else ""
                elif tool == "gensim":
                    args = dict(corpus=a.corpus, output=vec, size=a.size, window=a.window, negative=a.negative,
                                sample=float(a.sample), min_count=a.min_count, iter=a.iter, threads=t, seed=s)
                    outer, out = run([a.gensim_python, "-c", GENSIM_CHILD, json.dumps(args)], log)
                    info = json.loads(out.strip().splitlines()[-1])
                    rec.update(info)
                    rec["process_wall_s"] = outer
                    wall = info["wall_s"]
                else:
                    cmd = [w2vc, "-train", a.corpus, "-output", vec, "-cbow", "0", "-size", str(a.size),
                           "-window", str(a.window), "-negative", str(a.negative), "-hs", "0",
                           "-sample", str(a.sample), "-threads", str(t), "-iter", str(a.iter),
                           "-min-count", str(a.min_count), "-binary", "0"]
                    wall, _ = run(cmd, log)
                rec["wall_s"] = wall
                rec["words_per_s_per_thread"] = words * a.iter / wall / t
                rec.update(evaluate(a.mm, vec, a, os.path.join(work, tag + ".eval.log")))
            except Exception as e:  # keep going; record the failure
                rec["error"] = str(e)
                print(f"# {tag}: {e}", file=sys.stderr)
            rec["vectors"] = vec
            if a.no_common and not a.keep_vectors and os.path.exists(vec):
                os.remove(vec)
            results.append(rec)

    # ------------------------------------------- the same questions for every model
    scored = [r for r in results if "rho" in r and os.path.exists(r["vectors"])]
    if not a.no_common and len(scored) > 1:
        common = set.intersection(*(top_words(r["vectors"], a.restrict) for r in scored))
        within = os.path.join(work, "common-words.txt")
        with open(within, "w", encoding="utf-8") as f:
            f.write("\n".join(sorted(common)) + "\n")
        print(f"# common vocabulary: {len(common)} words in every model's top {a.restrict}",
              file=sys.stderr)
        for r in scored:
            tag = os.path.splitext(os.path.basename(r["vectors"]))[0]
            c = evaluate(a.mm, r["vectors"], a, os.path.join(work, tag + ".common.eval.log"), within)
            r["common_analogy_pct"] = c.get("analogy_pct")
            r["common_answered"] = c.get("analogy_answered")
    if not a.keep_vectors:
        for r in results:
            if os.path.exists(r["vectors"]):
                os.remove(r["vectors"])

    # ---------------------------------------------------------------- table
    def f(x, fmt):
        return format(x, fmt) if isinstance(x, (int, float)) else "-"

    print(f"{'tool':<11} {'thr':>3} {'seed':>4} {'wall s':>8} {'words/s/thr':>12} {'analogy %':>9} "
          f"{'common %':>9} {'rho':>7}")
    for r in results:
        print(f"{r['tool']:<11} {r['threads']:>3} {str(r['seed'] if r['seed'] is not None else '-'):>4} "
              f"{f(r.get('wall_s'), '8.2f'):>8} {f(r.get('words_per_s_per_thread'), '12.0f'):>12} "
              f"{f(r.get('analogy_pct'), '9.2f'):>9} {f(r.get('common_analogy_pct'), '9.2f'):>9} "
              f"{f(r.get('rho'), '7.4f'):>7}"
              + (f"  ERROR: {r['error'][:60]}" if "error" in r else ""))

    def mean_speed(tool, t):
        v = [r["words_per_s_per_thread"] for r in results
             if r["tool"] == tool and r["threads"] == t and "words_per_s_per_thread" in r]
        return sum(v) / len(v) if v else None

    ratios = {}
    for t in threads:
        ours = mean_speed("ours", t)
        for peer in ("gensim", "word2vec.c"):
            p = mean_speed(peer, t)
            if ours and p:
                ratios[f"ours/{peer}@{t}"] = ours / p
    if ratios:
        print("speed ratios (words/s/thread, mean over seeds): " +
              ", ".join(f"{k} = {v:.2f}x" for k, v in ratios.items()))

    # quality over seeds: mean +- sample standard deviation per tool and thread count
    quality = {}
    for t in threads:
        for tool in ("ours", "gensim", "word2vec.c"):
            rs = [r for r in results if r["tool"] == tool and r["threads"] == t and "rho" in r]
            if not rs:
                continue
            q = {"runs": len(rs)}
            for key in ("analogy_pct", "common_analogy_pct", "rho"):
                v = [r[key] for r in rs if key in r]
                if v:
                    m = sum(v) / len(v)
                    sd = (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
                    q[key] = (m, sd)
            quality[f"{tool}@{t}"] = q
            print(f"quality {tool}@{t} over {q['runs']} run(s): "
                  + ", ".join(f"{k} {q[k][0]:.3f} +- {q[k][1]:.3f}" for k in ("analogy_pct", "common_analogy_pct", "rho") if k in q))

    if a.out:
        with open(a.out, "w") as fo:
            json.dump({"corpus": os.path.abspath(a.corpus), "corpus_words": words,
                       "params": {"sg": 1, "size": a.size, "window": a.window, "negative": a.negative,
                                  "sample": a.sample, "min_count": a.min_count, "iter": a.iter,
                                  "restrict": a.restrict},
                       "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                "python": platform.python_version()},
                       "word2vec_c": w2vc, "mm": a.mm, "work_dir": work,
                       "results": results, "speed_ratios": ratios, "quality": quality}, fo, indent=2)
        print(f"# wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

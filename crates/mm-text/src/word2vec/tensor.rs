//! Skip-gram with negative sampling on tch tensors (feature `tch`): the same model as the CPU
//! trainer (input matrix `W`, output matrix `W'`, unigram^0.75 negatives, subsampling, dynamic
//! window, linear learning-rate decay), updated in batches of (context, centre) pairs with
//! `index_add_`, on CPU or CUDA. Same outputs as the CPU trainer ([`Embeddings`]).

use std::io::BufReader;
use std::path::Path;

use ndarray::Array2;
use tch::{Device, Kind, Tensor};

use super::sampling::Lcg;
use super::train::{Embeddings, Prepared, Word2Vec, Word2VecConfig, WordMap, for_each_word};
use crate::error::{Error, Result};

fn torch(e: tch::TchError) -> Error {
    Error::InvalidParameter {
        name: "device",
        reason: e.to_string(),
    }
}

/// Trains on the corpus at `path` with pairs batched `batch` at a time on `device`.
pub fn train_tensor(
    path: &Path,
    cfg: &Word2VecConfig,
    device: Device,
    batch: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Embeddings> {
    if batch == 0 {
        return Err(Error::InvalidParameter {
            name: "batch",
            reason: "must be positive".into(),
        });
    }
    if cfg.hs || cfg.cbow || cfg.negative == 0 {
        return Err(Error::InvalidParameter {
            name: "hs/cbow/negative",
            reason: "the tensor trainer does skip-gram with negative sampling only".into(),
        });
    }
    let Prepared {
        words,
        counts,
        train_words,
        syn0,
        table,
        keep,
    } = Word2Vec::new(cfg)?.prepare(path)?;
    let index: WordMap<&str, i64> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as i64))
        .collect();
    let (v, d) = (words.len() as i64, cfg.size as i64);
    let mut rng = Lcg(cfg.seed);
    let init: Vec<f32> = syn0.iter().copied().collect();
    let mut w_in = Tensor::from_slice(&init).view([v, d]).to(device);
    let mut w_out = Tensor::zeros([v, d], (Kind::Float, device));
    let start_alpha = f64::from(cfg.alpha.unwrap_or(0.025));
    let total = cfg.iter as u64 * train_words;
    let mut done = 0u64;
    let (mut ctx, mut ctr): (Vec<i64>, Vec<i64>) =
        (Vec::with_capacity(batch), Vec::with_capacity(batch));
    let k = cfg.negative as i64;
    let mut step =
        |ctx: &mut Vec<i64>, ctr: &mut Vec<i64>, done: u64, rng: &mut Lcg| -> Result<()> {
            if ctx.is_empty() {
                return Ok(());
            }
            let b = ctx.len() as i64;
            let alpha =
                (start_alpha * (1.0 - done as f64 / (total as f64 + 1.0))).max(start_alpha * 1e-4);
            // contexts, centres and negatives in one host buffer: one copy to the device per
            // batch (a copy from pageable memory waits for the device)
            let mut ids = Vec::with_capacity((2 + k as usize) * ctx.len());
            ids.extend_from_slice(ctx);
            ids.extend_from_slice(ctr);
            ids.extend((0..b * k).map(|_| table.sample(rng.bits()) as i64));
            tch::no_grad(|| -> Result<()> {
                let ids = Tensor::from_slice(&ids).to(device);
                let ci = ids.narrow(0, 0, b);
                let oi = ids.narrow(0, b, b);
                let ni = ids.narrow(0, 2 * b, b * k).view([b, k]);
                let x = w_in.f_index_select(0, &ci).map_err(torch)?; // [B, D]
                let pos = w_out.f_index_select(0, &oi).map_err(torch)?; // [B, D]
                let neg = w_out
                    .f_index_select(0, &ni.view([-1]))
                    .map_err(torch)?
                    .view([b, k, d]);
                // a negative equal to the centre word is skipped, as word2vec.c does
                let valid = ni.ne_tensor(&oi.unsqueeze(1)).to_kind(Kind::Float); // [B, K]
                let s_pos = (&x * &pos)
                    .sum_dim_intlist(-1, false, Kind::Float)
                    .clamp(-6.0, 6.0);
                let s_neg = neg.bmm(&x.unsqueeze(-1)).squeeze_dim(-1).clamp(-6.0, 6.0); // [B, K]
                let g_pos: Tensor = (s_pos.sigmoid().neg() + 1.0) * alpha; // [B]
                let g_neg: Tensor = s_neg.sigmoid().neg() * alpha * &valid; // [B, K]
                let grad_x = &pos * g_pos.unsqueeze(-1)
                    + (&neg * g_neg.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Float);
                let grad_pos = &x * g_pos.unsqueeze(-1);
                let grad_neg = x.unsqueeze(1) * g_neg.unsqueeze(-1); // [B, K, D]
                let _ = w_out.f_index_add_(0, &oi, &grad_pos).map_err(torch)?;
                let _ = w_out
                    .f_index_add_(0, &ni.view([-1]), &grad_neg.view([-1, d]))
                    .map_err(torch)?;
                let _ = w_in.f_index_add_(0, &ci, &grad_x).map_err(torch)?;
                Ok(())
            })?;
            ctx.clear();
            ctr.clear();
            Ok(())
        };
    for _ in 0..cfg.iter {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut sentence: Vec<i64> = Vec::new();
        let pairs_then =
            |sentence: &mut Vec<i64>, rng: &mut Lcg, ctx: &mut Vec<i64>, ctr: &mut Vec<i64>| {
                for pos in 0..sentence.len() {
                    let b = (rng.next() % cfg.window as u64) as usize;
                    let lo = pos.saturating_sub(cfg.window - b);
                    let hi = (pos + cfg.window - b + 1).min(sentence.len());
                    for c in (lo..hi).filter(|&c| c != pos) {
                        ctx.push(sentence[c]);
                        ctr.push(sentence[pos]);
                    }
                }
                sentence.clear();
            };
        let mut err = None;
        for_each_word(BufReader::new(file), path, |w| {
            if err.is_some() {
                return;
            }
            let Some(&id) = index.get(w) else { return };
            done += 1;
            if id == 0 {
                pairs_then(&mut sentence, &mut rng, &mut ctx, &mut ctr);
            } else {
                let p = keep[id as usize];
                if p >= 1.0 || p >= (rng.next() & 0xFFFF) as f64 / 65536.0 {
                    sentence.push(id);
                }
                if sentence.len() >= 1000 {
                    pairs_then(&mut sentence, &mut rng, &mut ctx, &mut ctr);
                }
            }
            if ctx.len() >= batch {
                if let Err(e) = step(&mut ctx, &mut ctr, done, &mut rng) {
                    err = Some(e);
                }
                progress(done, total);
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        pairs_then(&mut sentence, &mut rng, &mut ctx, &mut ctr);
        step(&mut ctx, &mut ctr, done, &mut rng)?;
        progress(done, total);
    }
    let flat: Vec<f32> = Vec::try_from(w_in.to(Device::Cpu).view([-1])).map_err(torch)?;
    let vectors = Array2::from_shape_vec((v as usize, d as usize), flat).map_err(|e| {
        Error::InvalidParameter {
            name: "vectors",
            reason: e.to_string(),
        }
    })?;
    Embeddings::new(words, counts, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_tensor_training_learns_the_topics_too() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.txt");
        let mut s = 99u64;
        let mut text = String::new();
        for _ in 0..1500 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            let t = (s >> 40) % 3;
            for _ in 0..10 {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                text.push_str(&format!("t{t}w{} ", (s >> 40) % 8));
            }
            text.push('\n');
        }
        std::fs::write(&p, text).unwrap();
        let cfg = Word2VecConfig {
            size: 16,
            window: 4,
            sample: 0.0,
            min_count: 1,
            iter: 3,
            ..Default::default()
        };
        let mut calls = 0;
        let emb = train_tensor(&p, &cfg, Device::Cpu, 512, &mut |_, _| calls += 1).unwrap();
        assert!(calls > 0);
        assert_eq!(emb.words.len(), 25);
        let mut hit = 0;
        let mut all = 0;
        for t in 0..3 {
            for w in 0..8 {
                for (n, _) in emb.most_similar(&format!("t{t}w{w}"), 4).unwrap() {
                    hit += usize::from(n.starts_with(&format!("t{t}")));
                    all += 1;
                }
            }
        }
        let precision = hit as f64 / all as f64;
        assert!(precision > 0.85, "topic precision {precision} (chance 0.3)");
        assert!(train_tensor(&p, &cfg, Device::Cpu, 0, &mut |_, _| {}).is_err());
        // only skip-gram with negative sampling: CBOW and hierarchical softmax are refused
        for bad in [
            Word2VecConfig {
                cbow: true,
                ..cfg.clone()
            },
            Word2VecConfig {
                hs: true,
                ..cfg.clone()
            },
        ] {
            let e = train_tensor(&p, &bad, Device::Cpu, 512, &mut |_, _| {}).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
        }
    }
}

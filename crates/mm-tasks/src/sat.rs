//! The Show, Attend and Tell decoder (Xu et al. 2015): an LSTM that attends over a feature map
//! at every step and emits one token, with teacher forcing, sampling rollouts and batched beam
//! search. One decoder for every task that turns a feature map into a sequence: captioning
//! emits words; a task emitting other tokens (speech units) reuses it with its own vocabulary.
//!
//! Parameter names follow the reference implementation's PyTorch module
//! (`sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning`), under the path it is built on:
//! `embed`, `init_h`, `init_c`, `attention.*`, `lstm.{weight,bias}_{ih,hh}`, and the deep
//! output layer of the paper (`l_h`, `l_z`, `out`).

use mm_fusion::{SoftAttention, SoftAttentionConfig};
use mm_train::{Error, Result};
use tch::{Device, Kind, Tensor, nn};

/// The decoder's sizes and decoding settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SatConfig {
    /// Channels of the annotations (the feature map's depth).
    pub feature_dim: i64,
    /// Tokens, `<start>` and `<end>` included.
    pub vocab: i64,
    /// Token embedding size.
    pub embed_dim: i64,
    /// LSTM state size.
    pub decoder_dim: i64,
    /// Attention MLP size.
    pub attention_dim: i64,
    /// Dropout before the deep output layer while training.
    pub dropout: f64,
    /// Most tokens of a decoded sequence.
    pub max_len: usize,
    /// Beams per input (1: greedy).
    pub beam_size: usize,
    /// Length normalisation of finished beams: `score / (len + 1)^length_alpha`.
    pub length_alpha: f64,
    /// The id of `<start>`.
    pub start: i64,
    /// The id of `<end>`.
    pub end: i64,
}

/// One decoded sequence: tokens (without `<start>`/`<end>`) and each step's attention weights.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The tokens.
    pub tokens: Vec<i64>,
    /// One attention map `[L]` per emitted token, `<end>` included.
    pub alphas: Vec<Vec<f32>>,
}

/// The decoder (see the module docs).
#[derive(Debug)]
pub struct SatDecoder {
    cfg: SatConfig,
    embed: nn::Embedding,
    init_h: nn::Linear,
    init_c: nn::Linear,
    attention: SoftAttention,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    l_h: nn::Linear,
    l_z: nn::Linear,
    out: nn::Linear,
    device: Device,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

impl SatDecoder {
    /// Builds the decoder's parameters under `p`.
    pub fn new(p: &nn::Path<'_>, cfg: &SatConfig) -> Result<Self> {
        crate::common::positive(&[
            ("feature_dim", cfg.feature_dim),
            ("vocab", cfg.vocab),
            ("embed_dim", cfg.embed_dim),
            ("decoder_dim", cfg.decoder_dim),
            ("attention_dim", cfg.attention_dim),
        ])?;
        let (m, n, d, v) = (cfg.embed_dim, cfg.decoder_dim, cfg.feature_dim, cfg.vocab);
        // created in this order, which fixes how the seeded initialisation is drawn
        let embed = nn::embedding(p / "embed", v, m, Default::default());
        let init_h = nn::linear(p / "init_h", d, n, Default::default());
        let init_c = nn::linear(p / "init_c", d, n, Default::default());
        let attention = SoftAttention::new(
            &(p / "attention"),
            &SoftAttentionConfig {
                feature_dim: d,
                hidden_dim: n,
                attention_dim: cfg.attention_dim,
                gate: true,
            },
        )
        .map_err(Error::task)?;
        let bound = 1.0 / (n as f64).sqrt();
        let u = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let cell = p / "lstm";
        let w_ih = cell.var("weight_ih", &[4 * n, m + d], u);
        let w_hh = cell.var("weight_hh", &[4 * n, n], u);
        let b_ih = cell.var("bias_ih", &[4 * n], u);
        let b_hh = cell.var("bias_hh", &[4 * n], u);
        let l_h = nn::linear(p / "l_h", n, m, Default::default());
        let l_z = nn::linear(p / "l_z", d, m, Default::default());
        let out = nn::linear(p / "out", m, v, Default::default());
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            init_h,
            init_c,
            attention,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            l_h,
            l_z,
            out,
            device: p.device(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SatConfig {
        &self.cfg
    }

    /// The initial LSTM state `(h, c)`, `[N, decoder_dim]` each, from the mean annotation.
    ///
    /// # Shapes
    /// `feats`: `[N, L, feature_dim]`.
    pub fn init_state(&self, feats: &Tensor) -> Result<(Tensor, Tensor)> {
        let mean = feats.f_mean_dim(&[1i64][..], false, None::<Kind>)?;
        Ok((
            mean.apply(&self.init_h).f_tanh()?,
            mean.apply(&self.init_c).f_tanh()?,
        ))
    }

    /// The attention's projection of `feats`, computed once per sequence for [`Self::step`].
    pub fn project(&self, feats: &Tensor) -> Result<Tensor> {
        self.attention.project(feats).map_err(Error::task)
    }

    /// One decoder step: log-probabilities of the next token, the new state and the attention
    /// weights. `proj` is [`Self::project`] of `feats`.
    ///
    /// # Shapes
    /// `feats`: `[N, L, D]`, `prev`: `[N]` token ids; returns `[N, vocab]`, `([N, H], [N, H])`
    /// and `[N, L]`.
    pub fn step(
        &self,
        feats: &Tensor,
        proj: &Tensor,
        prev: &Tensor,
        state: &(Tensor, Tensor),
        train: bool,
    ) -> Result<(Tensor, (Tensor, Tensor), Tensor)> {
        let att = self
            .attention
            .forward_projected(feats, proj, &state.0, None)
            .map_err(Error::task)?;
        let e = Tensor::f_embedding(&self.embed.ws, prev, -1, false, false)?;
        let input = Tensor::f_cat(&[&e, &att.context], 1)?;
        let (h, c) = Tensor::f_lstm_cell(
            &input,
            &[&state.0, &state.1],
            &self.w_ih,
            &self.w_hh,
            Some(&self.b_ih),
            Some(&self.b_hh),
        )?;
        let deep = (&e + h.apply(&self.l_h) + att.context.apply(&self.l_z))
            .f_dropout(self.cfg.dropout, train)?;
        let logp = deep.apply(&self.out).f_log_softmax(-1, Kind::Float)?;
        Ok((logp, (h, c), att.weights))
    }

    /// The teacher-forced loss of target sequences `seqs` (tokens without `<start>`/`<end>`,
    /// one per row of `feats`): the paper's per-sequence objective `-log P(y | x) + alpha_c *
    /// sum_i (1 - sum_t alpha_ti)^2`, summed over the batch and divided by the number of
    /// predicted tokens (`<end>` included): the token-mean cross-entropy of PyTorch practice
    /// with the attention penalty in the paper's proportion to it.
    ///
    /// # Shapes
    /// `feats`: `[N, L, D]` with `N = seqs.len()`; returns a scalar.
    pub fn teacher_forced_loss(
        &self,
        feats: &Tensor,
        seqs: &[&[i64]],
        alpha_c: f64,
    ) -> Result<Tensor> {
        let nb = seqs.len();
        let steps = seqs.iter().map(|c| c.len() + 1).max().unwrap_or(1);
        // inputs: <start> w1 .. wn; targets: w1 .. wn <end>; mask for the padding
        let (mut inp, mut tgt, mut mask) = (
            vec![self.cfg.start; nb * steps],
            vec![0i64; nb * steps],
            vec![0f32; nb * steps],
        );
        for (i, c) in seqs.iter().enumerate() {
            for t in 0..=c.len() {
                inp[t * nb + i] = if t == 0 { self.cfg.start } else { c[t - 1] };
                tgt[t * nb + i] = if t < c.len() { c[t] } else { self.cfg.end };
                mask[t * nb + i] = 1.0;
            }
        }
        let to = |v: Vec<i64>| {
            Tensor::from_slice(&v)
                .view([steps as i64, nb as i64])
                .to_device(self.device)
        };
        let (inp, tgt) = (to(inp), to(tgt));
        let mask = Tensor::from_slice(&mask)
            .view([steps as i64, nb as i64])
            .to_device(self.device);
        let mut state = self.init_state(feats)?;
        let proj = self.project(feats)?;
        let (mut nll, mut alphas) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        for t in 0..steps as i64 {
            let (logp, s, alpha) = self.step(feats, &proj, &inp.get(t), &state, true)?;
            let m = mask.get(t);
            let picked = logp
                .f_gather(1, &tgt.get(t).unsqueeze(1), false)?
                .f_squeeze_dim(1)?;
            nll.push((picked * &m).f_sum(Kind::Float)?);
            alphas.push(alpha * m.unsqueeze(1));
            state = s;
        }
        let nll = Tensor::f_stack(&nll, 0)?.f_sum(Kind::Float)?.f_neg()?;
        let alpha_sum = Tensor::f_stack(&alphas, 0)?.f_sum_dim_intlist(0, false, Kind::Float)?;
        let words = mask.f_sum(Kind::Float)?;
        let penalty = alpha_sum
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_pow_tensor_scalar(2.0)?
            .f_sum(Kind::Float)?;
        Ok((nll + penalty * alpha_c) / words)
    }

    /// Beam search (beam 1 = greedy) for a batch of annotations: each input keeps its own `k`
    /// beams, and the beams of all inputs step as one batch of `B * k` rows (a slot without a
    /// live beam scores minus infinity). Per input, as in the one-input search: the `k` best
    /// extensions of its live beams are kept, those ending in `<end>` are set aside as
    /// finished, and its search stops when `k` sequences are finished or none is left live;
    /// the best finished sequence (by `score / (len + 1)^length_alpha`) wins, or the best live
    /// one if none finished within `max_len` tokens.
    ///
    /// # Shapes
    /// `feats`: `[B, L, D]`; returns `B` sequences.
    pub fn beam_search(&self, feats: &Tensor) -> Result<Vec<Decoded>> {
        #[derive(Clone)]
        struct Beam {
            tokens: Vec<i64>,
            alphas: Vec<Vec<f32>>,
            score: f64,
        }
        let (start, end) = (self.cfg.start, self.cfg.end);
        let k = self.cfg.beam_size.max(1);
        let (nb, l) = (feats.size()[0], feats.size()[1] as usize);
        let images = nb as usize;
        let ki = k as i64;
        // row i * k + j: input i's slot j
        let rows = |t: &Tensor| t.f_repeat_interleave_self_int(ki, 0, None);
        let proj = self.project(feats)?;
        let (f, p) = (rows(feats)?, rows(&proj)?);
        let (h0, c0) = self.init_state(feats)?;
        let mut state = (rows(&h0)?, rows(&c0)?);
        let empty = Beam {
            tokens: vec![],
            alphas: vec![],
            score: 0.0,
        };
        let mut live: Vec<Vec<Beam>> = vec![vec![empty]; images];
        let mut done: Vec<Vec<Beam>> = vec![Vec::new(); images];
        let mut finished = vec![false; images];
        for _ in 0..self.cfg.max_len {
            let mut prev = vec![start; images * k];
            let mut base = vec![f32::NEG_INFINITY; images * k];
            for (i, beams) in live.iter().enumerate() {
                if finished[i] {
                    continue;
                }
                for (j, b) in beams.iter().enumerate() {
                    prev[i * k + j] = b.tokens.last().copied().unwrap_or(start);
                    base[i * k + j] = b.score as f32;
                }
            }
            let prev = Tensor::from_slice(&prev).to_device(self.device);
            let (logp, (h, c), alpha) = self.step(&f, &p, &prev, &state, false)?;
            let v = logp.size()[1];
            let scores = Tensor::from_slice(&base)
                .to_device(self.device)
                .f_unsqueeze(1)?
                + &logp;
            let (top, idx) = scores.f_view([nb, ki * v])?.f_topk(ki, -1, true, true)?;
            let top = Vec::<f32>::try_from(&top.to_device(Device::Cpu).reshape([-1]))?;
            let idx = Vec::<i64>::try_from(&idx.to_device(Device::Cpu).reshape([-1]))?;
            let alpha = Vec::<f32>::try_from(&alpha.to_device(Device::Cpu).reshape([-1]))?;
            // the row each new slot continues (free slots keep their own row)
            let mut src_rows: Vec<i64> = (0..(images * k) as i64).collect();
            for i in 0..images {
                if finished[i] {
                    continue;
                }
                let mut next = Vec::with_capacity(k);
                for j in i * k..(i + 1) * k {
                    let s = top[j];
                    if s == f32::NEG_INFINITY {
                        continue;
                    }
                    let (src, word) = ((idx[j] / v) as usize, idx[j] % v);
                    let row = i * k + src;
                    let old = &live[i][src];
                    let mut alphas = old.alphas.clone();
                    alphas.push(alpha[row * l..(row + 1) * l].to_vec());
                    let mut tokens = old.tokens.clone();
                    if word == end {
                        done[i].push(Beam {
                            tokens,
                            alphas,
                            score: s as f64,
                        });
                    } else {
                        tokens.push(word);
                        src_rows[i * k + next.len()] = row as i64;
                        next.push(Beam {
                            tokens,
                            alphas,
                            score: s as f64,
                        });
                    }
                }
                if next.is_empty() || done[i].len() >= k {
                    finished[i] = true;
                } else {
                    live[i] = next;
                }
            }
            if finished.iter().all(|&x| x) {
                break;
            }
            let src = Tensor::from_slice(&src_rows).to_device(self.device);
            state = (h.f_index_select(0, &src)?, c.f_index_select(0, &src)?);
        }
        let norm = |b: &Beam| b.score / ((b.tokens.len() + 1) as f64).powf(self.cfg.length_alpha);
        done.into_iter()
            .zip(live)
            .map(|(d, l)| {
                let pool = if d.is_empty() { l } else { d };
                let best = pool
                    .into_iter()
                    .max_by(|a, b| norm(a).total_cmp(&norm(b)))
                    .ok_or_else(|| bad("empty beam"))?;
                Ok(Decoded {
                    tokens: best.tokens,
                    alphas: best.alphas,
                })
            })
            .collect()
    }

    /// Decodes annotations token by token, each token sampled from the decoder's distribution
    /// (`sample`) or the most likely one, for at most `max_len` steps. Returns each row's tokens
    /// (without `<end>`), the log-probability of every emitted token and its mask (1 up to and
    /// including the row's `<end>`).
    ///
    /// # Shapes
    /// `feats`: `[B, L, D]`; returns `B` sequences, `[T, B]` and `[T, B]`.
    pub fn rollout(
        &self,
        feats: &Tensor,
        sample: bool,
        train: bool,
    ) -> Result<(Vec<Vec<i64>>, Tensor, Tensor)> {
        let b = feats.size()[0];
        let mut state = self.init_state(feats)?;
        let proj = self.project(feats)?;
        let mut prev = Tensor::f_full([b], self.cfg.start, (Kind::Int64, self.device))?;
        let mut alive = vec![true; b as usize];
        let mut tokens = vec![Vec::new(); b as usize];
        let (mut logps, mut masks) = (Vec::new(), Vec::new());
        for _ in 0..self.cfg.max_len {
            let (logp, s, _) = self.step(feats, &proj, &prev, &state, train)?;
            let word = if sample {
                logp.detach()
                    .f_exp()?
                    .f_multinomial(1, true)?
                    .f_squeeze_dim(1)?
            } else {
                logp.f_argmax(-1, false)?
            };
            let picked = logp
                .f_gather(1, &word.unsqueeze(1), false)?
                .f_squeeze_dim(1)?;
            let mask: Vec<f32> = alive.iter().map(|&a| f32::from(u8::from(a))).collect();
            for ((w, a), t) in Vec::<i64>::try_from(&word.to_device(Device::Cpu))?
                .into_iter()
                .zip(alive.iter_mut())
                .zip(tokens.iter_mut())
            {
                if *a {
                    if w == self.cfg.end {
                        *a = false;
                    } else {
                        t.push(w);
                    }
                }
            }
            logps.push(picked);
            masks.push(Tensor::from_slice(&mask).to_device(self.device));
            if !alive.iter().any(|&a| a) {
                break;
            }
            prev = word;
            state = s;
        }
        Ok((
            tokens,
            Tensor::f_stack(&logps, 0)?,
            Tensor::f_stack(&masks, 0)?,
        ))
    }
}

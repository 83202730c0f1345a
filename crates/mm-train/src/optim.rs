//! Optimizers written on tensors, so that their state can be checkpointed and a resumed run
//! continues bit for bit: SGD (momentum, Nesterov), Adam, AdamW and RMSprop, with PyTorch's
//! update rules and defaults, per-parameter learning-rate multipliers, and global gradient-norm
//! clipping.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

use crate::config::LrGroup;
use crate::error::{Error, Result};

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// `torch.optim.SGD` (L2 weight decay, momentum with dampening 0, optional Nesterov).
    Sgd,
    /// `torch.optim.Adam` (L2 weight decay added to the gradient).
    Adam,
    /// `torch.optim.AdamW` (decoupled weight decay).
    Adamw,
    /// `torch.optim.RMSprop` (not centred).
    Rmsprop,
}

/// The `[train.optimizer]` table; omitted fields take PyTorch's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// The rule.
    pub kind: OptimizerKind,
    /// The base learning rate.
    pub lr: f64,
    /// Weight decay (L2 for SGD/Adam/RMSprop, decoupled for AdamW).
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD and RMSprop momentum.
    #[serde(default)]
    pub momentum: f64,
    /// SGD: Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// Adam/AdamW `(beta1, beta2)`.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Adam/AdamW/RMSprop denominator term.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// RMSprop smoothing constant.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}

fn default_eps() -> f64 {
    1e-8
}

fn default_alpha() -> f64 {
    0.99
}

impl OptimizerConfig {
    /// Adam with learning rate `lr` and PyTorch's other defaults.
    pub fn adam(lr: f64) -> Self {
        Self {
            kind: OptimizerKind::Adam,
            lr,
            weight_decay: 0.0,
            momentum: 0.0,
            nesterov: false,
            betas: default_betas(),
            eps: default_eps(),
            alpha: default_alpha(),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidParameter {
                name: "train.optimizer",
                reason,
            })
        };
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return bad(format!("lr must be positive, got {}", self.lr));
        }
        if [self.weight_decay, self.momentum]
            .iter()
            .any(|x| x.is_nan() || *x < 0.0)
            || self.eps.is_nan()
            || self.eps <= 0.0
        {
            return bad("weight_decay and momentum must be >= 0, eps > 0".into());
        }
        if self.betas.iter().any(|b| !(0.0..1.0).contains(b)) || !(0.0..1.0).contains(&self.alpha) {
            return bad("betas and alpha must be in [0, 1)".into());
        }
        if self.nesterov && (self.kind != OptimizerKind::Sgd || self.momentum == 0.0) {
            return bad("nesterov needs kind = \"sgd\" and momentum > 0".into());
        }
        Ok(())
    }

    /// State tensors per parameter.
    fn n_state(&self) -> usize {
        match self.kind {
            OptimizerKind::Sgd => usize::from(self.momentum > 0.0),
            OptimizerKind::Adam | OptimizerKind::Adamw => 2,
            OptimizerKind::Rmsprop => 1 + usize::from(self.momentum > 0.0),
        }
    }
}

#[derive(Debug)]
struct Param {
    name: String,
    t: Tensor,
    lr_mult: f64,
    state: Vec<Tensor>,
}

/// An optimizer over the trainable variables of a var store.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimizerConfig,
    params: Vec<Param>,
    steps: i64,
}

/// The multiplier of `name`: the first group whose prefix matches, else 1.
fn lr_mult(groups: &[LrGroup], name: &str) -> f64 {
    groups
        .iter()
        .find(|g| name.starts_with(&g.prefix))
        .map_or(1.0, |g| g.lr_mult)
}

impl Optimizer {
    /// Optimizes the variables of `vs` that require gradients, in name order. Variables in a
    /// group with `lr_mult = 0` are frozen (`requires_grad` turned off) and left out. A group
    /// prefix that matches no variable is an error (a typo would silently train everything).
    pub fn new(vs: &nn::VarStore, cfg: &OptimizerConfig, groups: &[LrGroup]) -> Result<Self> {
        cfg.validate()?;
        let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        if let Some(g) = groups
            .iter()
            .find(|g| !vars.keys().any(|n| n.starts_with(&g.prefix)))
        {
            return Err(Error::InvalidParameter {
                name: "train.lr_groups",
                reason: format!("prefix `{}` matches no parameter", g.prefix),
            });
        }
        let mut params = Vec::new();
        for (name, t) in vars {
            if !t.requires_grad() {
                continue;
            }
            let mult = lr_mult(groups, &name);
            if mult == 0.0 {
                let _ = t.set_requires_grad(false);
                continue;
            }
            let state = (0..cfg.n_state())
                .map(|_| t.f_zeros_like())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            params.push(Param {
                name,
                t,
                lr_mult: mult,
                state,
            });
        }
        if params.is_empty() {
            return Err(Error::InvalidParameter {
                name: "train.lr_groups",
                reason: "no trainable parameters left".into(),
            });
        }
        Ok(Self {
            cfg: cfg.clone(),
            params,
            steps: 0,
        })
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> i64 {
        self.steps
    }

    /// Names of the optimized parameters.
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.t.zero_grad();
        }
    }

    /// Scales the gradients so that their global L2 norm is at most `max_norm`, as
    /// `torch.nn.utils.clip_grad_norm_` does; returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64> {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.t.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return Ok(0.0);
        }
        let norms = grads
            .iter()
            .map(|g| g.f_norm())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let total = Tensor::f_stack(&norms, 0)?.f_norm()?.double_value(&[]);
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            tch::no_grad(|| -> Result<()> {
                for mut g in grads {
                    let _ = g.f_mul_scalar_(coef)?;
                }
                Ok(())
            })?;
        }
        Ok(total)
    }

    /// One update with base learning rate `lr` (times each parameter's multiplier).
    pub fn step(&mut self, lr: f64) -> Result<()> {
        self.steps += 1;
        let t = self.steps;
        let c = self.cfg.clone();
        tch::no_grad(|| -> Result<()> {
            for p in &mut self.params {
                let g = p.t.grad();
                if !g.defined() {
                    continue;
                }
                let lr = lr * p.lr_mult;
                let decay_in_grad = c.weight_decay > 0.0 && c.kind != OptimizerKind::Adamw;
                let g = if decay_in_grad {
                    g.f_add(&p.t.f_mul_scalar(c.weight_decay)?)?
                } else {
                    g
                };
                match c.kind {
                    OptimizerKind::Sgd => {
                        let d = if c.momentum > 0.0 {
                            let buf = &mut p.state[0];
                            let _ = buf.f_mul_scalar_(c.momentum)?.f_add_(&g)?;
                            if c.nesterov {
                                g.f_add(&buf.f_mul_scalar(c.momentum)?)?
                            } else {
                                buf.shallow_clone()
                            }
                        } else {
                            g
                        };
                        let _ = p.t.f_sub_(&d.f_mul_scalar(lr)?)?;
                    }
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        let [b1, b2] = c.betas;
                        if c.kind == OptimizerKind::Adamw && c.weight_decay > 0.0 {
                            let _ = p.t.f_mul_scalar_(1.0 - lr * c.weight_decay)?;
                        }
                        let (m, rest) = p.state.split_at_mut(1);
                        let (m, v) = (&mut m[0], &mut rest[0]);
                        // in place as torch's single-tensor Adam: two temporaries per step
                        let _ = m.f_lerp_(&g, 1.0 - b1)?;
                        let _ = v
                            .f_mul_scalar_(b2)?
                            .f_addcmul_(&g, &g.f_mul_scalar(1.0 - b2)?)?;
                        let bc1 = 1.0 - b1.powi(t as i32);
                        let bc2 = 1.0 - b2.powi(t as i32);
                        let mut denom = v.f_sqrt()?;
                        let _ = denom
                            .f_div_scalar_(bc2.sqrt())?
                            .f_add_scalar_(c.eps)?
                            .f_mul_scalar_(-bc1 / lr)?;
                        let _ = p.t.f_addcdiv_(m, &denom)?;
                    }
                    OptimizerKind::Rmsprop => {
                        let (v, rest) = p.state.split_at_mut(1);
                        let v = &mut v[0];
                        let _ = v
                            .f_mul_scalar_(c.alpha)?
                            .f_add_(&g.f_mul(&g)?.f_mul_scalar(1.0 - c.alpha)?)?;
                        let avg = v.f_sqrt()?.f_add_scalar(c.eps)?;
                        let d = if c.momentum > 0.0 {
                            let buf = &mut rest[0];
                            let _ = buf.f_mul_scalar_(c.momentum)?.f_add_(&g.f_div(&avg)?)?;
                            buf.shallow_clone()
                        } else {
                            g.f_div(&avg)?
                        };
                        let _ = p.t.f_sub_(&d.f_mul_scalar(lr)?)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The state to checkpoint: `"{param}#{i}"` per state tensor, and `"#steps"`.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut m = BTreeMap::new();
        for p in &self.params {
            for (i, s) in p.state.iter().enumerate() {
                m.insert(format!("{}#{i}", p.name), s.shallow_clone());
            }
        }
        m.insert(
            "#steps".to_string(),
            Tensor::from_slice(&[self.steps as f64]).to_kind(Kind::Double),
        );
        m
    }

    /// Restores [`Optimizer::state`]; every entry must be present with the right shape.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let missing = |k: &str| Error::InvalidParameter {
            name: "optimizer state",
            reason: format!("`{k}` is missing or has the wrong shape"),
        };
        let steps = state.get("#steps").ok_or_else(|| missing("#steps"))?;
        tch::no_grad(|| -> Result<()> {
            for p in &mut self.params {
                for (i, s) in p.state.iter_mut().enumerate() {
                    let key = format!("{}#{i}", p.name);
                    let src = state
                        .get(&key)
                        .filter(|t| t.size() == s.size())
                        .ok_or_else(|| missing(&key))?;
                    s.f_copy_(src)?;
                }
            }
            Ok(())
        })?;
        self.steps = steps.double_value(&[0]) as i64;
        Ok(())
    }
}

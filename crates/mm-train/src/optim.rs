//! Optimizers written on tensors, so that their state can be checkpointed and a resumed run
//! continues bit for bit: SGD (momentum, Nesterov), Adam, AdamW and RMSprop, with PyTorch's
//! update rules and defaults, per-parameter learning-rate multipliers, and global gradient-norm
//! clipping.
//!
//! Parameters are updated in groups (same multiplier, dtype and device; up to 1 Mi values, or
//! one larger parameter): each parameter's `.grad` becomes a view of its group's flat gradient
//! buffer, into which backward then accumulates in place, and the optimizer state lives in flat
//! buffers too. Zeroing, clipping and the state updates are then a few kernels per group, and
//! only the final write is one per parameter: what torch.optim's multi-tensor ("foreach") path
//! does on CUDA, where a small model's step is otherwise dominated by kernel launches.

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
    /// Its group (in [`Optimizer::groups`]) and its place in the group's flat buffers.
    group: usize,
    offset: i64,
    numel: i64,
    /// Views of the group's state buffers, shaped as the parameter.
    state: Vec<Tensor>,
    /// The view of the group's gradient buffer that the parameter's `.grad` is made to be
    /// (see [`Optimizer::bind_grads`]).
    grad_view: Tensor,
    /// The view of the group's scratch buffer, which holds the update to add.
    scratch_view: Tensor,
    /// Whether `.grad` was defined and bound at the last check (a parameter no backward has
    /// reached yet has no gradient and is left alone, as torch.optim leaves it).
    bound: bool,
}

impl Param {
    /// This parameter's part of a flat group buffer, shaped as the parameter.
    fn view_of(&self, flat: &Tensor) -> Result<Tensor> {
        Ok(flat
            .f_narrow(0, self.offset, self.numel)?
            .f_view(self.t.size().as_slice())?)
    }
}

/// Parameters of one learning-rate multiplier, dtype and device, whose gradients and optimizer
/// state live in flat buffers: each update is a few kernels over the whole group (as
/// `torch.optim`'s multi-tensor "foreach" path) instead of a few per parameter, which is what
/// dominates a small model's step on a GPU.
#[derive(Debug)]
struct Group {
    lr_mult: f64,
    grad: Tensor,
    state: Vec<Tensor>,
    /// Room for temporaries, so that a step allocates nothing.
    scratch: Tensor,
}

/// What parameters must share to be updated together: learning-rate multiplier, dtype, device.
type GroupKey = (f64, Kind, tch::Device);

/// The most values a group of several parameters holds (4 MiB of `f32`).
const GROUP_NUMEL: usize = 1 << 20;

/// An optimizer over the trainable variables of a var store.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimizerConfig,
    /// Prepended to the names of its checkpoint state (`"generator/"`; empty for a task's only
    /// optimizer, whose checkpoints keep the names they always had).
    key_prefix: String,
    params: Vec<Param>,
    groups: Vec<Group>,
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
        Self::over(vars, cfg, groups, String::new())
    }

    /// The optimizer of parameter group `name` ([`crate::ParamGroup`]): over the variables
    /// of `vs` whose names start with one of `prefixes`, with its checkpoint state named
    /// `"{name}/..."`. `lr_groups` apply as in [`Optimizer::new`], but a prefix of theirs that
    /// matches nothing here is not an error (it may match another group's variables).
    pub fn for_group(
        vs: &nn::VarStore,
        name: &str,
        prefixes: &[String],
        cfg: &OptimizerConfig,
        lr_groups: &[LrGroup],
    ) -> Result<Self> {
        let vars: BTreeMap<String, Tensor> = vs
            .variables()
            .into_iter()
            .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p.as_str())))
            .collect();
        Self::over(vars, cfg, lr_groups, format!("{name}/"))
    }

    fn over(
        vars: BTreeMap<String, Tensor>,
        cfg: &OptimizerConfig,
        groups: &[LrGroup],
        key_prefix: String,
    ) -> Result<Self> {
        cfg.validate()?;
        // (multiplier, dtype, device) -> groups of parameters, each at most GROUP_NUMEL values
        // (or one larger parameter) so that a group's buffers stay cache-sized on a CPU
        let mut by_group: Vec<(GroupKey, Vec<(String, Tensor)>)> = Vec::new();
        for (name, t) in vars {
            if !t.requires_grad() {
                continue;
            }
            let mult = lr_mult(groups, &name);
            if mult == 0.0 {
                let _ = t.set_requires_grad(false);
                continue;
            }
            let key = (mult, t.kind(), t.device());
            let numel = t.numel();
            let open = by_group.iter_mut().rev().find(|(k, members)| {
                *k == key
                    && members.iter().map(|(_, t)| t.numel()).sum::<usize>() + numel <= GROUP_NUMEL
            });
            match open {
                Some((_, members)) => members.push((name, t)),
                None => by_group.push((key, vec![(name, t)])),
            }
        }
        if by_group.is_empty() {
            let whose = match key_prefix.strip_suffix('/') {
                Some(g) => format!(" in group `{g}`"),
                None => String::new(),
            };
            return Err(Error::InvalidParameter {
                name: "train.lr_groups",
                reason: format!("no trainable parameters left{whose}"),
            });
        }
        let (mut params, mut flat_groups) = (Vec::new(), Vec::new());
        for (gi, ((mult, kind, device), members)) in by_group.into_iter().enumerate() {
            let total: i64 = members.iter().map(|(_, t)| t.numel() as i64).sum();
            let zeros = || Tensor::f_zeros([total], (kind, device));
            let group = Group {
                lr_mult: mult,
                grad: zeros()?,
                state: (0..cfg.n_state())
                    .map(|_| zeros())
                    .collect::<std::result::Result<Vec<_>, _>>()?,
                scratch: zeros()?,
            };
            let mut offset = 0;
            for (name, t) in members {
                let numel = t.numel() as i64;
                let mut p = Param {
                    name,
                    t,
                    group: gi,
                    offset,
                    numel,
                    state: Vec::new(),
                    grad_view: Tensor::new(),
                    scratch_view: Tensor::new(),
                    bound: false,
                };
                p.state = group
                    .state
                    .iter()
                    .map(|s| p.view_of(s))
                    .collect::<Result<Vec<_>>>()?;
                p.grad_view = p.view_of(&group.grad)?;
                p.scratch_view = p.view_of(&group.scratch)?;
                offset += numel;
                params.push(p);
            }
            flat_groups.push(group);
        }
        // name order, as before the grouping
        params.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            cfg: cfg.clone(),
            key_prefix,
            params,
            groups: flat_groups,
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

    /// Makes every defined `.grad` a view of its group's flat gradient buffer (copying its
    /// values there), so that backward accumulates into the buffer in place (autograd adds
    /// into an existing gradient rather than replacing it) and the group's update runs on
    /// the buffer. A gradient replaced by someone else is bound again; a parameter without a
    /// gradient keeps zeros in the buffer and is not updated.
    fn bind_grads(&mut self) -> Result<()> {
        for p in &mut self.params {
            let mut g = p.t.grad();
            p.bound = g.defined();
            if p.bound && g.data_ptr() != p.grad_view.data_ptr() {
                tch::no_grad(|| -> Result<()> {
                    p.grad_view.f_copy_(&g)?;
                    g.f_set_data(&p.grad_view)?;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// Sets every gradient to zero (one kernel per group).
    pub fn zero_grad(&mut self) -> Result<()> {
        self.bind_grads()?;
        tch::no_grad(|| -> Result<()> {
            for g in &mut self.groups {
                let _ = g.grad.f_zero_()?;
            }
            Ok(())
        })
    }

    /// Scales the gradients so that their global L2 norm is at most `max_norm`, as
    /// `torch.nn.utils.clip_grad_norm_` does (on the device, without waiting for it: the
    /// factor `min(1, max_norm / (norm + 1e-6))` is applied as a tensor); returns the norm
    /// before clipping as a 0-dimensional `f64` tensor.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<Tensor> {
        self.bind_grads()?;
        if !self.params.iter().any(|p| p.bound) {
            return Ok(Tensor::f_zeros([], (Kind::Double, tch::Device::Cpu))?);
        }
        let norms = self
            .groups
            .iter()
            .map(|g| g.grad.f_norm()?.f_to_kind(Kind::Double))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let total = Tensor::f_stack(&norms, 0)?.f_norm()?;
        tch::no_grad(|| -> Result<()> {
            if total.device() == tch::Device::Cpu {
                // nothing to wait for on a CPU: skip the pass when no clipping is needed
                let coef = max_norm / (total.f_double_value(&[])? + 1e-6);
                if coef < 1.0 {
                    for g in &mut self.groups {
                        let _ = g.grad.f_mul_scalar_(coef)?;
                    }
                }
            } else {
                let coef = Tensor::f_full([], max_norm, (Kind::Double, total.device()))?
                    .f_div(&total.f_add_scalar(1e-6)?)?
                    .f_clamp_max(1.0)?;
                for g in &mut self.groups {
                    let _ = g.grad.f_mul_(&coef)?;
                }
            }
            Ok(())
        })?;
        Ok(total)
    }

    /// One update with base learning rate `lr` (times each parameter's multiplier).
    pub fn step(&mut self, lr: f64) -> Result<()> {
        self.bind_grads()?;
        self.steps += 1;
        let t = self.steps;
        let c = self.cfg.clone();
        tch::no_grad(|| -> Result<()> {
            // weight decay touches each parameter; the rest runs on the flat buffers
            for p in &mut self.params {
                if !p.bound || c.weight_decay == 0.0 {
                    continue;
                }
                if c.kind == OptimizerKind::Adamw {
                    let mult = self.groups[p.group].lr_mult;
                    let _ = p.t.f_mul_scalar_(1.0 - lr * mult * c.weight_decay)?;
                } else {
                    // L2: the decayed parameter joins the gradient
                    let _ = p.grad_view.f_add_(&p.t.f_mul_scalar(c.weight_decay)?)?;
                }
            }
            for (gi, group) in self.groups.iter_mut().enumerate() {
                let lr = lr * group.lr_mult;
                let (g, scratch) = (&group.grad, &mut group.scratch);
                // the group's update goes into `scratch` (Adam: its denominator), then onto each
                // bound parameter
                match c.kind {
                    OptimizerKind::Sgd => {
                        if c.momentum > 0.0 {
                            let buf = &mut group.state[0];
                            let _ = buf.f_mul_scalar_(c.momentum)?.f_add_(g)?;
                            if c.nesterov {
                                let _ = buf.f_mul_scalar_out(scratch, c.momentum)?;
                                let _ = scratch.f_add_(g)?.f_mul_scalar_(-lr)?;
                            } else {
                                let _ = buf.f_mul_scalar_out(scratch, -lr)?;
                            }
                        } else {
                            let _ = g.f_mul_scalar_out(scratch, -lr)?;
                        }
                    }
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        let [b1, b2] = c.betas;
                        let (m, rest) = group.state.split_at_mut(1);
                        let (m, v) = (&mut m[0], &mut rest[0]);
                        let _ = m.f_lerp_(g, 1.0 - b1)?;
                        let _ = g.f_mul_scalar_out(scratch, 1.0 - b2)?;
                        let _ = v.f_mul_scalar_(b2)?.f_addcmul_(g, scratch)?;
                        let bc1 = 1.0 - b1.powi(t as i32);
                        let bc2 = 1.0 - b2.powi(t as i32);
                        // the denominator, scaled so that p += m / denom (no temporary)
                        let _ = v.f_sqrt_out(scratch)?;
                        let _ = scratch
                            .f_div_scalar_(bc2.sqrt())?
                            .f_add_scalar_(c.eps)?
                            .f_mul_scalar_(-bc1 / lr)?;
                    }
                    OptimizerKind::Rmsprop => {
                        let (v, rest) = group.state.split_at_mut(1);
                        let v = &mut v[0];
                        let _ = g.f_mul_out(scratch, g)?.f_mul_scalar_(1.0 - c.alpha)?;
                        let _ = v.f_mul_scalar_(c.alpha)?.f_add_(scratch)?;
                        let _ = v.f_sqrt_out(scratch)?.f_add_scalar_(c.eps)?;
                        let _ = g.f_div_out(scratch, scratch)?;
                        if c.momentum > 0.0 {
                            let buf = &mut rest[0];
                            let _ = buf.f_mul_scalar_(c.momentum)?.f_add_(scratch)?;
                            let _ = buf.f_mul_scalar_out(scratch, -lr)?;
                        } else {
                            let _ = scratch.f_mul_scalar_(-lr)?;
                        }
                    }
                }
                let adam = matches!(c.kind, OptimizerKind::Adam | OptimizerKind::Adamw);
                for p in self.params.iter_mut().filter(|p| p.group == gi && p.bound) {
                    let _ = if adam {
                        p.t.f_addcdiv_(&p.state[0], &p.scratch_view)?
                    } else {
                        p.t.f_add_(&p.scratch_view)?
                    };
                }
            }
            Ok(())
        })
    }

    /// The state to checkpoint: `"{param}#{i}"` per state tensor, and `"#steps"` (each
    /// name after `"{group}/"` for a group's optimizer, [`Optimizer::for_group`]).
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut m = BTreeMap::new();
        let pre = &self.key_prefix;
        for p in &self.params {
            for (i, s) in p.state.iter().enumerate() {
                m.insert(format!("{pre}{}#{i}", p.name), s.shallow_clone());
            }
        }
        m.insert(
            format!("{pre}#steps"),
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
        let pre = &self.key_prefix;
        let steps_key = format!("{pre}#steps");
        let steps = state.get(&steps_key).ok_or_else(|| missing(&steps_key))?;
        tch::no_grad(|| -> Result<()> {
            for p in &mut self.params {
                for (i, s) in p.state.iter_mut().enumerate() {
                    let key = format!("{pre}{}#{i}", p.name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// After the first step binds them, gradients stay views of the flat buffers: backward
    /// accumulates into them in place, so no step copies a gradient again. A parameter no
    /// backward has reached is not touched (not even by decoupled weight decay), and the
    /// update equals the one-parameter-at-a-time rule.
    #[test]
    fn gradients_accumulate_into_the_flat_buffer_and_unused_parameters_stay() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let a = root.randn("a", &[3, 4], 0.0, 1.0);
        let b = root.randn("b", &[5], 0.0, 1.0);
        let unused = root.randn("unused", &[2], 0.0, 1.0);
        let cfg = OptimizerConfig {
            kind: OptimizerKind::Adamw,
            weight_decay: 0.1,
            ..OptimizerConfig::adam(0.01)
        };
        let mut opt = Optimizer::new(&vs, &cfg, &[]).unwrap();
        assert_eq!(opt.groups.len(), 1);
        let unused_before = unused.copy();
        // a reference: the same rule applied to copies, one tensor at a time
        let (mut ra, mut rb) = (a.detach().copy(), b.detach().copy());
        let (mut m, mut v) = (
            [ra.zeros_like(), rb.zeros_like()],
            [ra.zeros_like(), rb.zeros_like()],
        );
        for step in 1..=4 {
            opt.zero_grad().unwrap();
            let loss = (&a * &a).sum(Kind::Float) * f64::from(step) + (&b * 3.0).sum(Kind::Float);
            loss.backward();
            if step > 1 {
                // accumulated in place: the gradients are still the buffer's views
                for p in opt.params.iter().filter(|p| p.name != "unused") {
                    assert_eq!(p.t.grad().data_ptr(), p.grad_view.data_ptr(), "{}", p.name);
                }
            }
            let grads = [a.grad().copy(), b.grad().copy()];
            opt.step(0.01).unwrap();
            for (k, r) in [&mut ra, &mut rb].into_iter().enumerate() {
                let g = &grads[k];
                *r = &*r * (1.0 - 0.01 * 0.1);
                m[k] = &m[k] * 0.9 + g * 0.1;
                v[k] = &v[k] * 0.999 + g * g * 0.001;
                let mh = &m[k] / (1.0 - 0.9f64.powi(step));
                let vh = &v[k] / (1.0 - 0.999f64.powi(step));
                *r = &*r - mh * 0.01 / (vh.sqrt() + 1e-8);
            }
        }
        assert!(!unused.grad().defined());
        assert_eq!(unused, unused_before);
        for (p, r) in [(&a, &ra), (&b, &rb)] {
            let err = (p - r).abs().max().double_value(&[]);
            assert!(err < 1e-6, "max error {err}");
        }
    }
}

//! Adam whose state is tensors, so a training loop can checkpoint it.
//!
//! tch's `nn::Adam` keeps its moments inside libtorch's C++ optimiser, out of reach of a
//! checkpoint; this one keeps them as tensors, so a resumed run continues with exactly the
//! state it stopped with. The update is PyTorch's `torch.optim.Adam` (no weight decay, no
//! AMSGrad): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::{nn::VarStore, Tensor};

use crate::{Collective, Result, TensorError};

/// Adam over the trainable variables of a `VarStore`, with checkpointable state.
///
/// The moments of a variable live on its device in its kind; [`Adam::state`] names them
/// `adam.m.<var>`, `adam.v.<var>` (plus `adam.steps`), and [`Adam::load_state`] restores them.
///
/// ```
/// use genae_tensor::Adam;
/// use tch::{nn::VarStore, Device, Kind, Tensor};
///
/// let vs = VarStore::new(Device::Cpu);
/// let w = vs.root().add("w", Tensor::from_slice(&[1.0f64, -2.0]), true);
/// let mut adam = Adam::new(&vs, 0.1);
/// // A linear loss has a constant gradient, so Adam's bias-corrected step is lr·sign(g).
/// adam.backward_step(&(&w * Tensor::from_slice(&[3.0f64, -0.5])).sum(Kind::Double))?;
/// let moved = Vec::<f64>::try_from(&w).unwrap();
/// assert!((moved[0] - 0.9).abs() < 1e-7 && (moved[1] + 1.9).abs() < 1e-7);
///
/// // The state goes into a checkpoint and back into a fresh optimiser.
/// let saved: std::collections::BTreeMap<String, Tensor> = adam.state().into_iter().collect();
/// let mut resumed = Adam::new(&vs, 0.1);
/// resumed.load_state(&saved).unwrap();
/// assert_eq!(resumed.steps(), 1);
/// # Ok::<(), genae_tensor::TensorError>(())
/// ```
///
/// In data-parallel training, [`Adam::set_collective`] makes every step average the
/// gradients over the processes first (DDP's allreduce), in one flattened collective.
pub struct Adam {
    /// Learning rate.
    pub learning_rate: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Updates taken so far (`t`).
    steps: u64,
    /// `(name, parameter, first moment, second moment)`, in name order.
    slots: Vec<(String, Tensor, Tensor, Tensor)>,
    /// Averages the gradients over processes before each step (data-parallel training).
    collective: Option<Arc<dyn Collective>>,
}

impl std::fmt::Debug for Adam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adam")
            .field("learning_rate", &self.learning_rate)
            .field("beta1", &self.beta1)
            .field("beta2", &self.beta2)
            .field("steps", &self.steps)
            .field("variables", &self.slots.len())
            .field("data_parallel", &self.collective.is_some())
            .finish()
    }
}

/// The key of `adam.steps` in [`Adam::state`].
const STEPS_KEY: &str = "adam.steps";

fn state_error(key: &str, reason: impl Into<String>) -> TensorError {
    TensorError::OptimizerState {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl Adam {
    /// Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8) over `vs`'s trainable
    /// variables.
    pub fn new(vs: &VarStore, learning_rate: f64) -> Self {
        let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let slots = variables
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, t)| {
                let m = t.zeros_like().detach();
                let v = t.zeros_like().detach();
                (name, t, m, v)
            })
            .collect();
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            steps: 0,
            slots,
            collective: None,
        }
    }

    /// The same with first-moment decay `beta1` (PyTorch's default 0.9; adversarial players
    /// are often trained with 0.5).
    pub fn with_beta1(mut self, beta1: f64) -> Self {
        self.beta1 = beta1;
        self
    }

    /// The same with second-moment decay `beta2` (PyTorch's default 0.999; FactorVAE's
    /// discriminator uses 0.9).
    pub fn with_beta2(mut self, beta2: f64) -> Self {
        self.beta2 = beta2;
        self
    }

    /// Averages the gradients over the processes of a data-parallel job before every step
    /// (variables without a gradient are skipped; they are the same on every process, which
    /// runs the same program).
    pub fn set_collective(&mut self, collective: Arc<dyn Collective>) {
        self.collective = Some(collective);
    }

    /// The parameters this optimiser updates, by name (in name order).
    pub fn variables(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.slots.iter().map(|(name, p, _, _)| (name.as_str(), p))
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Zeroes the gradients of the variables this optimiser updates (before a `backward`
    /// whose gradients several optimisers share).
    pub fn zero_grad(&self) {
        for (_, p, _, _) in &self.slots {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// Zeroes the gradients, back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.zero_grad();
        loss.f_backward()?;
        self.step()
    }

    /// With a collective: replaces the gradients by their means over the processes.
    fn average_gradients(&self) -> Result<()> {
        let Some(collective) = &self.collective else {
            return Ok(());
        };
        let grads: Vec<Tensor> = self
            .slots
            .iter()
            .map(|(_, p, _, _)| p.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return Ok(());
        }
        collective
            .mean(&grads)
            .map_err(|reason| TensorError::Collective {
                what: format!("averaging the gradients of {} variables", grads.len()),
                reason,
            })
    }

    /// One update from the current gradients (variables without one are left alone); with a
    /// collective ([`Adam::set_collective`]) the gradients are first averaged over the
    /// processes, and an error says which collective failed.
    ///
    /// Written to launch few kernels: with `c₁ = 1−β₁ᵗ`, `c₂ = 1−β₂ᵗ`, the update
    /// `lr/c₁ · m / (√v/√c₂ + ε)` is `(lr·√c₂/c₁) · m / (√v + ε√c₂)`, so the denominator takes
    /// one allocation and the rest happens in place.
    pub fn step(&mut self) -> Result<()> {
        self.average_gradients()?;
        self.steps += 1;
        let t = self.steps as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        let step_size = self.learning_rate * bias2_sqrt / bias1;
        let eps = self.eps * bias2_sqrt;
        tch::no_grad(|| {
            for (_, p, m, v) in &mut self.slots {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - self.beta1);
                let _ = v.lerp_(&g.square(), 1.0 - self.beta2);
                // p ← p + m / (−(√v + ε')/step) = p − step · m / (√v + ε')
                let mut denom = v.sqrt();
                let _ = denom.g_add_scalar_(eps);
                let _ = denom.g_mul_scalar_(-1.0 / step_size);
                let _ = p.addcdiv_(m, &denom);
            }
        });
        Ok(())
    }

    /// The state as named tensors (`adam.m.<var>`, `adam.v.<var>`, `adam.steps`), for a
    /// checkpoint. The moments share storage with the optimiser's.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len() + 1);
        for (name, _, m, v) in &self.slots {
            out.push((format!("adam.m.{name}"), m.shallow_clone()));
            out.push((format!("adam.v.{name}"), v.shallow_clone()));
        }
        out.push((
            STEPS_KEY.to_string(),
            Tensor::from_slice(&[self.steps as i64]),
        ));
        out
    }

    /// Restores [`Adam::state`] from `tensors` (extra entries are ignored; moments are
    /// converted to each variable's kind and device). Every entry is checked before any is
    /// copied, so on an error — [`TensorError::OptimizerState`] naming the first missing or
    /// mis-shaped entry — the optimiser is unchanged.
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        let saved_steps = tensors
            .get(STEPS_KEY)
            .ok_or_else(|| state_error(STEPS_KEY, "missing"))?;
        if saved_steps.numel() != 1 {
            return Err(state_error(
                STEPS_KEY,
                format!("must hold one number, got shape {:?}", saved_steps.size()),
            ));
        }
        let steps = saved_steps.f_reshape([1])?.f_int64_value(&[0])?;
        let steps = u64::try_from(steps)
            .map_err(|_| state_error(STEPS_KEY, format!("is negative ({steps})")))?;
        let mut restored = Vec::with_capacity(2 * self.slots.len());
        for (name, _, m, v) in &self.slots {
            for (key, slot) in [(format!("adam.m.{name}"), m), (format!("adam.v.{name}"), v)] {
                let saved = tensors
                    .get(&key)
                    .ok_or_else(|| state_error(&key, "missing"))?;
                if saved.size() != slot.size() {
                    return Err(state_error(
                        &key,
                        format!(
                            "shape {:?} in the state, {:?} in the model",
                            saved.size(),
                            slot.size()
                        ),
                    ));
                }
                restored.push((
                    slot.shallow_clone(),
                    saved.f_to_kind(slot.kind())?.f_to_device(slot.device())?,
                ));
            }
        }
        tch::no_grad(|| -> Result<()> {
            for (mut slot, saved) in restored {
                slot.f_copy_(&saved)?;
            }
            Ok(())
        })?;
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, OptimizerConfig};
    use tch::{Device, Kind};

    /// A tiny regression problem and its loss.
    fn problem(vs: &VarStore) -> impl Fn() -> Tensor {
        let lin = nn::linear(vs.root() / "lin", 3, 2, Default::default());
        let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 1.5, 0.0, -0.5]).view([2, 3]);
        let y = Tensor::from_slice(&[1.0f32, -1.0, 0.5, 2.0]).view([2, 2]);
        move || (x.apply(&lin) - &y).square().mean(Kind::Float)
    }

    /// A problem seeded with `seed` and an Adam (lr 0.05) that took `steps` updates on it; the
    /// caller holds the RNG lock.
    fn trained(seed: i64, steps: usize) -> (VarStore, impl Fn() -> Tensor, Adam) {
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let loss = problem(&vs);
        let mut adam = Adam::new(&vs, 0.05);
        for _ in 0..steps {
            adam.backward_step(&loss()).unwrap();
        }
        (vs, loss, adam)
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap()
    }

    #[test]
    fn three_steps_match_a_hand_computation_of_torch_adam() {
        let _rng = crate::torch_rng_lock();
        // L(θ) = Σᵢ ½cᵢθᵢ² + bᵢθᵢ, so gᵢ = cᵢθᵢ + bᵢ; the reference below is
        // torch.optim.Adam's loop written out in f64: m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ),
        // θ ← θ − lr · m̂/(√v̂ + ε).
        let (c, b) = ([2.0, 0.5, 4.0], [-1.0, 0.3, 0.0]);
        let theta0 = [0.7, -1.2, 0.05];
        let (lr, beta1, beta2, eps) = (0.1, 0.9, 0.999, 1e-8);
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().add("w", Tensor::from_slice(&theta0), true);
        let (c_t, b_t) = (Tensor::from_slice(&c), Tensor::from_slice(&b));
        let mut adam = Adam::new(&vs, lr);

        let (mut theta, mut m, mut v) = (theta0, [0.0; 3], [0.0; 3]);
        for t in 1..=3 {
            let loss = (&c_t * w.square() * 0.5 + &b_t * &w).sum(Kind::Double);
            adam.backward_step(&loss).unwrap();
            for i in 0..3 {
                let g = c[i] * theta[i] + b[i];
                m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                let m_hat = m[i] / (1.0 - f64::powi(beta1, t));
                let v_hat = v[i] / (1.0 - f64::powi(beta2, t));
                theta[i] -= lr * m_hat / (v_hat.sqrt() + eps);
            }
            for (got, want) in values(&w).iter().zip(theta) {
                assert!((got - want).abs() < 1e-12, "step {t}: {got} vs {want}");
            }
        }
        assert_eq!(adam.steps(), 3);
        // The moments are the hand-computed ones too.
        let state: BTreeMap<String, Tensor> = adam.state().into_iter().collect();
        for (got, want) in values(&state["adam.m.w"]).iter().zip(m) {
            assert!((got - want).abs() < 1e-15, "m: {got} vs {want}");
        }
        for (got, want) in values(&state["adam.v.w"]).iter().zip(v) {
            assert!((got - want).abs() < 1e-15, "v: {got} vs {want}");
        }
    }

    #[test]
    fn a_constant_gradient_moves_by_the_learning_rate_each_step() {
        let _rng = crate::torch_rng_lock();
        // Closed form: with g constant, m̂ = g and v̂ = g² exactly after every step, so each
        // step is lr · g/(|g| + ε), and three steps move θ by 3·lr·sign(g) (up to ε).
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().add("w", Tensor::from_slice(&[0.0f64, 1.0]), true);
        let g = Tensor::from_slice(&[2.5f64, -0.01]);
        let mut adam = Adam::new(&vs, 0.05);
        for _ in 0..3 {
            adam.backward_step(&(&w * &g).sum(Kind::Double)).unwrap();
        }
        let got = values(&w);
        let want = [
            0.0 - 3.0 * 0.05 * 2.5 / (2.5 + 1e-8),
            1.0 + 3.0 * 0.05 * 0.01 / (0.01 + 1e-8),
        ];
        for (got, want) in got.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn matches_libtorchs_adam_step_for_step() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(3);
        let vs_a = VarStore::new(Device::Cpu);
        let loss_a = problem(&vs_a);
        let mut vs_b = VarStore::new(Device::Cpu);
        let loss_b = problem(&vs_b);
        vs_b.copy(&vs_a).unwrap();
        let mut ours = Adam::new(&vs_a, 0.05);
        let mut theirs = nn::Adam::default().build(&vs_b, 0.05).unwrap();
        for _ in 0..25 {
            ours.backward_step(&loss_a()).unwrap();
            theirs.backward_step(&loss_b());
        }
        let a = vs_a.variables();
        for (name, b) in vs_b.variables() {
            let diff = (&a[&name] - &b).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{name}: {diff}");
        }
        assert_eq!(ours.steps(), 25);
    }

    #[test]
    fn restored_state_continues_identically() {
        let _rng = crate::torch_rng_lock();
        let (vs_a, loss_a, mut a) = trained(4, 5);
        // A second model with the first one's parameters and optimiser state.
        let mut vs_b = VarStore::new(Device::Cpu);
        let loss_b = problem(&vs_b);
        vs_b.copy(&vs_a).unwrap();
        let mut b = Adam::new(&vs_b, 0.05);
        let state: BTreeMap<String, Tensor> = a.state().into_iter().collect();
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 5);
        for _ in 0..5 {
            a.backward_step(&loss_a()).unwrap();
            b.backward_step(&loss_b()).unwrap();
        }
        let va = vs_a.variables();
        for (name, t) in vs_b.variables() {
            assert!(va[&name].equal(&t), "{name} differs after resuming");
        }
    }

    #[test]
    fn a_bad_state_is_named_and_leaves_the_optimiser_unchanged() {
        let _rng = crate::torch_rng_lock();
        let (vs, _loss, adam) = trained(5, 1);
        let good = || -> BTreeMap<String, Tensor> {
            adam.state()
                .into_iter()
                .map(|(k, t)| (k, t.copy()))
                .collect()
        };
        let mut fresh = Adam::new(&vs, 0.05);

        let mut missing = good();
        missing.remove("adam.v.lin.weight");
        let err = fresh.load_state(&missing).unwrap_err();
        assert!(
            matches!(&err, TensorError::OptimizerState { key, .. } if key == "adam.v.lin.weight"),
            "{err}"
        );
        // The first moments were checked but not copied.
        let m = &fresh.state()[0].1;
        assert_eq!(m.abs().sum(Kind::Double).double_value(&[]), 0.0);
        assert_eq!(fresh.steps(), 0);

        let mut misshaped = good();
        misshaped.insert(
            "adam.m.lin.bias".into(),
            Tensor::zeros([3], (Kind::Float, Device::Cpu)),
        );
        let err = fresh.load_state(&misshaped).unwrap_err().to_string();
        assert!(
            err.contains("adam.m.lin.bias") && err.contains("[3]"),
            "{err}"
        );

        let mut negative = good();
        negative.insert(STEPS_KEY.into(), Tensor::from_slice(&[-1i64]));
        let err = fresh.load_state(&negative).unwrap_err().to_string();
        assert!(
            err.contains("adam.steps") && err.contains("negative"),
            "{err}"
        );

        fresh.load_state(&good()).unwrap();
        assert_eq!(fresh.steps(), 1);
    }
}

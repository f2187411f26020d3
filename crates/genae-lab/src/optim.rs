//! Adam whose state the engine can checkpoint.
//!
//! tch's `nn::Adam` keeps its moments inside libtorch's C++ optimiser, out of reach of a
//! checkpoint; this one keeps them as tensors, so a resumed run continues with exactly the
//! state it stopped with. The update is PyTorch's `torch.optim.Adam` (no weight decay, no
//! AMSGrad): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.

use std::collections::BTreeMap;

use tch::{nn::VarStore, Tensor};

/// Adam over the trainable variables of a `VarStore`, with checkpointable state.
#[derive(Debug)]
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
        }
    }

    /// The same with first-moment decay `beta1` (PyTorch's default 0.9; adversarial players
    /// are often trained with 0.5).
    pub fn with_beta1(mut self, beta1: f64) -> Self {
        self.beta1 = beta1;
        self
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
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// One update from the current gradients (variables without one are left alone).
    ///
    /// Written to launch few kernels: with `c₁ = 1−β₁ᵗ`, `c₂ = 1−β₂ᵗ`, the update
    /// `lr/c₁ · m / (√v/√c₂ + ε)` is `(lr·√c₂/c₁) · m / (√v + ε√c₂)`, so the denominator takes
    /// one allocation and the rest happens in place.
    pub fn step(&mut self) {
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
    }

    /// The state as named tensors (`adam.m.<var>`, `adam.v.<var>`, `adam.steps`), for a
    /// checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len() + 1);
        for (name, _, m, v) in &self.slots {
            out.push((format!("adam.m.{name}"), m.shallow_clone()));
            out.push((format!("adam.v.{name}"), v.shallow_clone()));
        }
        out.push((
            "adam.steps".to_string(),
            Tensor::from_slice(&[self.steps as i64]),
        ));
        out
    }

    /// Restores [`Adam::state`] from `tensors`; the error names the first missing or
    /// mis-shaped entry.
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<(), String> {
        let steps = tensors
            .get("adam.steps")
            .ok_or("missing adam.steps")?
            .int64_value(&[0]);
        tch::no_grad(|| {
            for (name, _, m, v) in &mut self.slots {
                for (key, slot) in [
                    (format!("adam.m.{name}"), &mut *m),
                    (format!("adam.v.{name}"), v),
                ] {
                    let saved = tensors.get(&key).ok_or(format!("missing {key}"))?;
                    if saved.size() != slot.size() {
                        return Err(format!(
                            "{key}: shape {:?} in the checkpoint, {:?} in the model",
                            saved.size(),
                            slot.size()
                        ));
                    }
                    slot.copy_(&saved.to_kind(slot.kind()).to_device(slot.device()));
                }
            }
            Ok(())
        })?;
        self.steps = u64::try_from(steps).map_err(|_| "adam.steps is negative".to_string())?;
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
            ours.backward_step(&loss_a());
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
        tch::manual_seed(4);
        let vs_a = VarStore::new(Device::Cpu);
        let loss_a = problem(&vs_a);
        let mut a = Adam::new(&vs_a, 0.05);
        for _ in 0..5 {
            a.backward_step(&loss_a());
        }
        // A second model with the first one's parameters and optimiser state.
        let mut vs_b = VarStore::new(Device::Cpu);
        let loss_b = problem(&vs_b);
        vs_b.copy(&vs_a).unwrap();
        let mut b = Adam::new(&vs_b, 0.05);
        let state: BTreeMap<String, Tensor> = a.state().into_iter().collect();
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 5);
        for _ in 0..5 {
            a.backward_step(&loss_a());
            b.backward_step(&loss_b());
        }
        let va = vs_a.variables();
        for (name, t) in vs_b.variables() {
            assert!(va[&name].equal(&t), "{name} differs after resuming");
        }
        // A missing entry is named.
        let mut broken: BTreeMap<String, Tensor> = a.state().into_iter().collect();
        broken.remove("adam.v.lin.weight");
        assert!(b
            .load_state(&broken)
            .unwrap_err()
            .contains("adam.v.lin.weight"));
    }
}

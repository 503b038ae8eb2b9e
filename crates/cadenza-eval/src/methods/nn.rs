//! Small candle helpers shared by the trained methods: seeded initialisation and dropout
//! (candle's own draw from an unseeded generator, and runs must be reproducible).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::Result;

pub(crate) fn dev() -> Device {
    Device::Cpu
}

/// A trainable variable registered in `vm` under `name`, drawn from N(0, stdev²) with `rng`.
pub(crate) fn normal_var(
    vm: &VarMap,
    name: &str,
    shape: &[usize],
    stdev: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let dist = Normal::new(0.0, stdev.max(1e-12)).expect("finite stdev");
    let data: Vec<f32> = (0..n).map(|_| dist.sample(rng) as f32).collect();
    const_var(vm, name, Tensor::from_vec(data, shape, &dev())?)
}

/// A trainable variable with a given initial value.
pub(crate) fn const_var(vm: &VarMap, name: &str, value: Tensor) -> Result<Tensor> {
    let var = Var::from_tensor(&value)?;
    let t = var.as_tensor().clone();
    vm.data()
        .lock()
        .expect("varmap lock")
        .insert(name.to_owned(), var);
    Ok(t)
}

/// `x · Wᵀ + b` with a Xavier-uniform-ish normal init of `W` (`out × in`) and zero `b`.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub w: Tensor,
    pub b: Tensor,
}

impl Dense {
    pub fn new(
        vm: &VarMap,
        name: &str,
        din: usize,
        dout: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let stdev = (2.0 / (din + dout) as f64).sqrt();
        Ok(Dense {
            w: normal_var(vm, &format!("{name}.weight"), &[dout, din], stdev, rng)?,
            b: const_var(
                vm,
                &format!("{name}.bias"),
                Tensor::zeros(dout, DType::F32, &dev())?,
            )?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_matmul(&self.w.t()?)?.broadcast_add(&self.b)?)
    }
}

/// Layer norm over the last dimension with trainable gain and bias.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub g: Tensor,
    pub b: Tensor,
}

impl Norm {
    pub fn new(vm: &VarMap, name: &str, d: usize) -> Result<Self> {
        Ok(Norm {
            g: const_var(
                vm,
                &format!("{name}.weight"),
                Tensor::ones(d, DType::F32, &dev())?,
            )?,
            b: const_var(
                vm,
                &format!("{name}.bias"),
                Tensor::zeros(d, DType::F32, &dev())?,
            )?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm_slow(x, &self.g, &self.b, 1e-6)?)
    }
}

/// Inverted dropout with a seeded mask (identity when `p == 0`).
pub(crate) fn dropout(x: &Tensor, p: f32, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let n = x.elem_count();
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    Ok(x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)?)
}

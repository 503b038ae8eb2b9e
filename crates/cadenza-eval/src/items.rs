//! The item table: one vector per catalogue track, from a pretrained audio model, MFCC
//! statistics, random noise, or (for harness tests only) metadata.

use serde::{Deserialize, Serialize};

/// Row-major `n × dim` vectors; row `i` belongs to catalogue track `i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemTable {
    /// Which embedding this is (`MTT_musicnn`, `mfcc`, `random`, …).
    pub name: String,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl ItemTable {
    pub fn new(name: impl Into<String>, dim: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len() % dim.max(1), 0, "data is not n × dim");
        ItemTable {
            name: name.into(),
            dim,
            data,
        }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// A copy with every row scaled to unit length (zero rows stay zero).
    pub fn normalized(&self) -> ItemTable {
        let mut data = self.data.clone();
        for row in data.chunks_mut(self.dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
            }
        }
        ItemTable::new(self.name.clone(), self.dim, data)
    }

    /// A copy with each dimension centred and scaled to unit variance over the catalogue:
    /// cosine on raw MFCC statistics or ReLU activations is dominated by a few large,
    /// shared dimensions otherwise.
    pub fn standardized(&self) -> ItemTable {
        let n = self.len().max(1) as f32;
        let mut data = self.data.clone();
        for d in 0..self.dim {
            let mean = (0..self.len())
                .map(|i| self.data[i * self.dim + d])
                .sum::<f32>()
                / n;
            let var = (0..self.len())
                .map(|i| (self.data[i * self.dim + d] - mean).powi(2))
                .sum::<f32>()
                / n;
            let sd = var.sqrt().max(1e-6);
            for i in 0..self.len() {
                data[i * self.dim + d] = (self.data[i * self.dim + d] - mean) / sd;
            }
        }
        ItemTable::new(self.name.clone(), self.dim, data)
    }

    /// Mean of the given rows (zeros for an empty history).
    pub fn mean_of(&self, items: &[usize]) -> Vec<f32> {
        let mut m = vec![0.0; self.dim];
        for &i in items {
            for (a, b) in m.iter_mut().zip(self.row(i)) {
                *a += b;
            }
        }
        if !items.is_empty() {
            m.iter_mut().for_each(|x| *x /= items.len() as f32);
        }
        m
    }
}

/// Dot product of every row of a row-major table with `q`: the plain scan the serving
/// benchmark compares against.
pub fn dot_scan(table: &[f32], dim: usize, q: &[f32]) -> Vec<f32> {
    table
        .chunks_exact(dim)
        .map(|r| r.iter().zip(q).map(|(a, b)| a * b).sum())
        .collect()
}

//! The JSON sidecar written next to each exported `.onnx` file by `tools/export`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// What the model expects as input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub patch_frames: usize,
    pub mel_bands: usize,
    pub sample_rate: u32,
    pub n_fft: usize,
    pub hop: usize,
}

/// One output layer: name and width per patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    pub name: String,
    pub dim: usize,
}

/// A model's description: input, outputs, and the tag vocabulary of its `taggram`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub input: InputSpec,
    pub outputs: Vec<OutputSpec>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

impl ModelSpec {
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |detail: String| ModelError::BadSpec {
            path: path.to_owned(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let spec: ModelSpec = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if spec.outputs.is_empty() {
            return Err(bad("it lists no outputs".into()));
        }
        if let Some(t) = spec.outputs.iter().find(|o| o.name == "taggram")
            && !spec.tags.is_empty()
            && spec.tags.len() != t.dim
        {
            return Err(bad(format!(
                "{} tags for a taggram of width {}",
                spec.tags.len(),
                t.dim
            )));
        }
        Ok(spec)
    }

    /// The layer used as the track's embedding vector: `penultimate` for MusiCNN, the last
    /// pooling block (`pool5`) for VGG, else the first layer that is not the taggram.
    pub fn embedding_layer(&self) -> &OutputSpec {
        ["penultimate", "pool5"]
            .iter()
            .find_map(|n| self.output(n))
            .or_else(|| self.outputs.iter().find(|o| o.name != "taggram"))
            .unwrap_or(&self.outputs[0])
    }

    pub fn output(&self, name: &str) -> Option<&OutputSpec> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

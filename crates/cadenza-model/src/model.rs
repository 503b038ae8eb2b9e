//! One ONNX Runtime session over an exported model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cadenza_audio::Patches;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::error::{ModelError, Result};
use crate::locate;
use crate::spec::ModelSpec;

/// How a model session runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// Threads ONNX Runtime may use inside one inference call. One thread per session and
    /// one session per worker parallelises best for many small files; raise it for one file.
    pub intra_threads: usize,
    /// Patches per inference call: bounds memory for hour-long recordings (a patch is 72 KB of
    /// input) while keeping batches large enough to be efficient.
    pub batch_size: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            intra_threads: 1,
            batch_size: 32,
        }
    }
}

/// Per-patch outputs: layer name → `[n_patches × dim]` row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchOutputs {
    pub n_patches: usize,
    pub layers: BTreeMap<String, Vec<f32>>,
}

impl PatchOutputs {
    /// Row `patch` of layer `name`.
    pub fn row(&self, name: &str, patch: usize) -> Option<&[f32]> {
        let data = self.layers.get(name)?;
        let dim = data.len() / self.n_patches.max(1);
        data.get(patch * dim..(patch + 1) * dim)
    }

    /// Mean over patches of every layer: the track-level embedding.
    pub fn mean_pooled(&self) -> BTreeMap<String, Vec<f32>> {
        self.layers
            .iter()
            .map(|(name, data)| {
                let dim = data.len() / self.n_patches.max(1);
                let mut mean = vec![0.0f64; dim];
                for row in data.chunks_exact(dim) {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += *v as f64;
                    }
                }
                let n = self.n_patches.max(1) as f64;
                (
                    name.clone(),
                    mean.into_iter().map(|m| (m / n) as f32).collect(),
                )
            })
            .collect()
    }
}

/// The process-wide ONNX Runtime environment; the dylib can be loaded once only.
fn environment() -> Result<Environment> {
    static ENV: OnceLock<std::result::Result<Environment, ModelError>> = OnceLock::new();
    let init = || -> Result<Environment> {
        let path = locate::onnxruntime()?;
        let load_err = |detail: String| ModelError::RuntimeLoad {
            path: path.clone(),
            detail,
        };
        let builder = ort::init_from(&path).map_err(|e| load_err(e.to_string()))?;
        builder
            .with_name("cadenza")
            .build()
            .map_err(|e| load_err(e.to_string()))
    };
    match ENV.get_or_init(init) {
        Ok(env) => Ok(env.clone()),
        Err(ModelError::RuntimeNotFound { searched }) => Err(ModelError::RuntimeNotFound {
            searched: searched.clone(),
        }),
        Err(e) => Err(ModelError::RuntimeLoad {
            path: PathBuf::new(),
            detail: e.to_string(),
        }),
    }
}

/// A loaded model: its description and an ONNX Runtime session.
pub struct Model {
    spec: ModelSpec,
    path: PathBuf,
    options: ModelOptions,
    // `Session::run` takes `&mut self`; a mutex lets a shared `Model` be used from any thread.
    session: Mutex<Session>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.spec.name)
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Load model `name` (e.g. `MTT_musicnn`) or an `.onnx` path with its `.json` sidecar.
    pub fn load(name: &str, options: ModelOptions) -> Result<Model> {
        let path = locate::model(name)?;
        Self::load_path(&path, options)
    }

    pub fn load_path(path: &Path, options: ModelOptions) -> Result<Model> {
        let spec = ModelSpec::read(&path.with_extension("json"))?;
        let env = environment()?;
        let fail = |detail: String| ModelError::Inference {
            model: spec.name.clone(),
            detail,
        };
        let session = Session::builder(&env)
            .map_err(|e| fail(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(|e| fail(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| fail(e.to_string()))?
            .with_flush_to_zero()
            .map_err(|e| fail(e.to_string()))?
            .commit_from_file(path)
            .map_err(|e| fail(e.to_string()))?;
        for out in &spec.outputs {
            if !session.outputs().iter().any(|o| o.name() == out.name) {
                return Err(ModelError::BadSpec {
                    path: path.with_extension("json"),
                    detail: format!("output `{}` is not in the ONNX graph", out.name),
                });
            }
        }
        Ok(Model {
            spec,
            path: path.to_owned(),
            options,
            session: Mutex::new(session),
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Run every patch through the model (in batches) and collect every declared output.
    pub fn run(&self, patches: &Patches) -> Result<PatchOutputs> {
        let fail = |detail: String| ModelError::Inference {
            model: self.spec.name.clone(),
            detail,
        };
        let (pf, nm) = (self.spec.input.patch_frames, self.spec.input.mel_bands);
        if patches.patch_frames != pf || patches.n_mels != nm {
            return Err(fail(format!(
                "patches are {}×{}, the model takes {pf}×{nm}",
                patches.patch_frames, patches.n_mels
            )));
        }
        let mut layers: BTreeMap<String, Vec<f32>> = self
            .spec
            .outputs
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    Vec::with_capacity(patches.n_patches * o.dim),
                )
            })
            .collect();
        let batch = self.options.batch_size.max(1);
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        for start in (0..patches.n_patches).step_by(batch) {
            let n = batch.min(patches.n_patches - start);
            let slice = &patches.data[start * pf * nm..(start + n) * pf * nm];
            let input = TensorRef::from_array_view(([n, pf, nm], slice))
                .map_err(|e| fail(e.to_string()))?;
            let outputs = session
                .run(ort::inputs![self.spec.input.name.as_str() => input])
                .map_err(|e| fail(e.to_string()))?;
            for out in &self.spec.outputs {
                let (shape, data) = outputs[out.name.as_str()]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| fail(format!("output `{}`: {e}", out.name)))?;
                if data.len() != n * out.dim {
                    return Err(fail(format!(
                        "output `{}` has shape {shape:?}, expected [{n}, {}]",
                        out.name, out.dim
                    )));
                }
                layers
                    .get_mut(&out.name)
                    .expect("declared output")
                    .extend_from_slice(data);
            }
        }
        Ok(PatchOutputs {
            n_patches: patches.n_patches,
            layers,
        })
    }
}

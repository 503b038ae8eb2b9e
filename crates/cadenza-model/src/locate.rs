//! Finding the two things a fresh checkout needs at run time: `libonnxruntime` (from the
//! PyPI `onnxruntime` wheel that `make setup` installs into `.venv`) and the `models/` folder.
//!
//! Search order, first hit wins — explicit settings, then the checkout we run from, then the
//! checkout we were built from:
//! * runtime: `ORT_DYLIB_PATH`; `<root>/.venv/lib/python3*/site-packages/onnxruntime/capi/`
//!   for each root; the user's site-packages; the system library path.
//! * models: `CADENZA_MODELS_DIR`; `<root>/models` for each root.
//!
//! Roots are the current directory and its ancestors, the executable's ancestors, and the
//! workspace the binary was compiled in.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// Candidate checkout roots, nearest first, without duplicates.
pub fn roots() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |start: &Path| {
        for a in start.ancestors() {
            if !out.iter().any(|p| p == a) {
                out.push(a.to_owned());
            }
        }
    };
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        push_ancestors(&exe);
    }
    // crates/cadenza-model → workspace root.
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Ok(p) = built_in.canonicalize() {
        push_ancestors(&p);
    }
    out
}

/// Path of `libonnxruntime`, or a [`ModelError::RuntimeNotFound`] listing where we looked.
pub fn onnxruntime() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ModelError::RuntimeNotFound { searched: vec![p] })
        };
    }
    let mut searched = Vec::new();
    let mut site_dirs: Vec<PathBuf> = roots().iter().map(|r| r.join(".venv/lib")).collect();
    if let Some(home) = std::env::var_os("HOME") {
        site_dirs.push(PathBuf::from(home).join(".local/lib"));
    }
    for lib in site_dirs {
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pythons.sort();
        for py in pythons.iter().rev() {
            let capi = py.join("site-packages/onnxruntime/capi");
            searched.push(capi.clone());
            if let Some(found) = find_dylib(&capi) {
                return Ok(found);
            }
        }
    }
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"] {
        let dir = PathBuf::from(dir);
        searched.push(dir.clone());
        if let Some(found) = find_dylib(&dir) {
            return Ok(found);
        }
    }
    Err(ModelError::RuntimeNotFound { searched })
}

/// `libonnxruntime.so` or its newest versioned file (`libonnxruntime.so.1.23.2`) in `dir`.
fn find_dylib(dir: &Path) -> Option<PathBuf> {
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    hits.sort();
    hits.pop()
}

/// Folders that may hold `<name>.onnx` + `<name>.json`, in search order.
pub fn model_dirs() -> Vec<PathBuf> {
    if let Some(d) = std::env::var_os("CADENZA_MODELS_DIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(d)];
    }
    roots().into_iter().map(|r| r.join("models")).collect()
}

/// The `.onnx` path of model `name`, which may also be a path to an `.onnx` file.
pub fn model(name: &str) -> Result<PathBuf> {
    let as_path = Path::new(name);
    if as_path.extension().is_some_and(|e| e == "onnx") {
        if as_path.is_file() {
            return Ok(as_path.to_owned());
        }
        return Err(not_found(name, vec![as_path.to_owned()]));
    }
    let dirs = model_dirs();
    for d in &dirs {
        let p = d.join(format!("{name}.onnx"));
        if p.is_file() && p.with_extension("json").is_file() {
            return Ok(p);
        }
    }
    Err(not_found(name, dirs))
}

/// Names of the models found in the first folder that has any.
pub fn known_models() -> Vec<String> {
    for d in model_dirs() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                (p.extension()? == "onnx" && p.with_extension("json").is_file())
                    .then(|| p.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        if !names.is_empty() {
            names.sort();
            return names;
        }
    }
    Vec::new()
}

fn not_found(name: &str, searched: Vec<PathBuf>) -> ModelError {
    let known = known_models();
    ModelError::ModelNotFound {
        name: name.to_owned(),
        known: if known.is_empty() {
            "none found".into()
        } else {
            known.join(", ")
        },
        searched,
    }
}

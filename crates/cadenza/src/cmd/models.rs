//! `cadenza models`: what `embed --model` accepts.

use std::process::ExitCode;

use cadenza_model::{ModelSpec, locate};

pub fn run() -> anyhow::Result<ExitCode> {
    let names = locate::known_models();
    if names.is_empty() {
        anyhow::bail!(
            "no models found; looked in: {}",
            locate::model_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for name in names {
        let path = locate::model(&name)?;
        let spec = ModelSpec::read(&path.with_extension("json"))?;
        let outputs: Vec<String> = spec
            .outputs
            .iter()
            .map(|o| format!("{}[{}]", o.name, o.dim))
            .collect();
        println!("{name:<14} {}  ({})", outputs.join(" "), path.display());
    }
    match locate::onnxruntime() {
        Ok(p) => println!("onnxruntime    {}", p.display()),
        Err(e) => println!("onnxruntime    MISSING: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

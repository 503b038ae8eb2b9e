#!/usr/bin/env python3
"""Export the pretrained MusiCNN / VGG checkpoints of the `musicnn==0.1.0` wheel to ONNX.

Runs in the TF environment (`make export-venv`). For each model it rebuilds the TF1 graph
with `musicnn.models.define_model(x, False, ...)`, restores the checkpoint from the explicit
prefix inside the installed package (the `checkpoint` index files name the author's
machine), names the outputs, freezes, converts with tf2onnx at opset 17, renames the ONNX
tensors to bare names (`melspec`, `taggram`, ...), and writes `models/<name>.onnx` plus the
`models/<name>.json` sidecar the Rust `cadenza-model` crate reads. The ONNX graph is put in
a canonical form (canonical.py) so that a rerun gives the same bytes and the same sha256.

Every export is checked: TF and onnxruntime run the same random batch and, per output,
max |ONNX - TF| / max(1, max |TF|) must stay below --tolerance (1e-4; so absolute for the
taggram and penultimate, relative for the pooled maps that reach ~50). onnxruntime lives in the
project's runtime venv (it needs a newer protobuf than TF 2.15), so the ONNX half runs in
a subprocess: `check_onnx.py` under --runtime-python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# tf2onnx's graph optimisers iterate over sets of names, so the hash seed can change which
# Reshape gets folded; fix it (re-exec once) so that reruns give the same graph.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

from canonical import canonicalize  # noqa: E402
from pool_first import pool_before_batch_norm  # noqa: E402
from musicnn_graph import (  # noqa: E402
    MODELS,
    N_MELS,
    PATCH_FRAMES,
    build_session,
    checkpoint_dir,
    labels_for,
)

REPO = Path(__file__).resolve().parents[2]
OPSET = 17


def make_tf2onnx_deterministic() -> None:
    """Hash tf2onnx graph nodes by creation order instead of by memory address.

    tf2onnx's optimisers iterate over sets of `Node` objects, whose default hash is the
    object's address, so which of two equivalent Transpose/Reshape forms comes out varied
    from run to run. A creation counter keeps hashing identity-based (equality stays
    `is`) but makes the iteration order a function of the program alone.
    """
    import itertools

    from tf2onnx import graph as tfgraph

    if getattr(tfgraph.Node, "_cadenza_seq_hash", False):
        return
    counter = itertools.count()
    init = tfgraph.Node.__init__

    def seq_init(self, *args, **kwargs):
        self._cadenza_seq = next(counter)
        init(self, *args, **kwargs)

    tfgraph.Node.__init__ = seq_init
    tfgraph.Node.__hash__ = lambda self: self._cadenza_seq
    tfgraph.Node._cadenza_seq_hash = True


def rename_tensors(model, mapping: dict[str, str]) -> None:
    """Rename value names throughout an ONNX graph (tf2onnx keeps TF's `name:0`)."""
    g = model.graph
    for node in g.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = mapping.get(vi.name, vi.name)
    # The dynamic batch axis gets a readable symbol.
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "N"


def export_one(name: str, out_dir: Path, runtime_python: str, tolerance: float, seed: int) -> dict:
    import onnx
    import tensorflow as tf
    import tf2onnx

    make_tf2onnx_deterministic()
    sess, inp, outputs = build_session(name)
    out_names = list(outputs)
    frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
        sess, sess.graph.as_graph_def(), [outputs[k].op.name for k in out_names]
    )

    # Reference numbers from TF on a random batch (log-mel values live in about [0, 4]).
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 4.0, size=(4, PATCH_FRAMES, N_MELS)).astype(np.float32)
    tf_out = sess.run([outputs[k] for k in out_names], feed_dict={inp: x})
    sess.close()

    with tf.Graph().as_default():
        model_proto, _ = tf2onnx.convert.from_graph_def(
            frozen,
            input_names=[inp.name],
            output_names=[outputs[k].name for k in out_names],
            opset=OPSET,
        )
    mapping = {inp.name: "melspec"}
    mapping.update({outputs[k].name: k for k in out_names})
    rename_tensors(model_proto, mapping)
    # Same numbers, a quarter less time: ReLU and batch norm after the frequency max-pool
    # (pool_first.py); the TF check below covers the rewritten graph.
    pooled_first = pool_before_batch_norm(model_proto)
    canonicalize(model_proto)
    model_proto.doc_string = f"musicnn==0.1.0 {name}, exported by tools/export/export_onnx.py"
    onnx.checker.check_model(model_proto)
    onnx_path = out_dir / f"{name}.onnx"
    onnx.save(model_proto, str(onnx_path))

    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "ref.npz"
        np.savez(npz, melspec=x, **{k: v for k, v in zip(out_names, tf_out)})
        res = subprocess.run(
            [runtime_python, str(Path(__file__).with_name("check_onnx.py")), str(onnx_path), str(npz)],
            capture_output=True,
            text=True,
        )
    if res.returncode != 0:
        sys.exit(f"{name}: ONNX check failed to run:\n{res.stderr}")
    check = json.loads(res.stdout.strip().splitlines()[-1])
    # float32 summation order differs between TF and onnxruntime, so the tolerance scales
    # with an output's magnitude once that exceeds 1 (pooled conv maps reach ~50).
    diff, ref_max = check["max_abs_diff"], check["max_abs_ref"]
    scaled = {k: diff[k] / max(1.0, ref_max[k]) for k in diff}
    worst = max(diff.values())
    print(f"{name}: ONNX vs TF max |diff| {fmt(diff)}; max |TF| {fmt(ref_max)} (onnxruntime {check['onnxruntime']})")
    bad = {k: v for k, v in scaled.items() if not v <= tolerance}
    if bad:
        onnx_path.unlink()
        sys.exit(f"{name}: ONNX differs from TF beyond {tolerance} x max(1, max|TF|): {fmt(bad)}; export removed")

    dims = {k: int(v.shape[1]) for k, v in zip(out_names, tf_out)}
    sidecar = {
        "name": name,
        "input": {
            "name": "melspec",
            "patch_frames": PATCH_FRAMES,
            "mel_bands": N_MELS,
            "sample_rate": 16000,
            "n_fft": 512,
            "hop": 256,
        },
        "outputs": [{"name": k, "dim": dims[k], "note": MODELS[name]["notes"][k]} for k in out_names],
        "tags": labels_for(name),
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "source": f"musicnn==0.1.0 checkpoint {name}/",
        "front_end": "log10(10000 * float16(mel_power) + 1); librosa Slaney mel, fmax 8000, "
        "centred STFT with reflect padding, hann periodic window; patches of 187 frames, no overlap",
        "opset": OPSET,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return {
        "name": name,
        "bytes": onnx_path.stat().st_size,
        "sha256": sidecar["sha256"],
        "max_abs_diff": worst,
        "per_output_max_abs_diff": diff,
        "per_output_max_abs_tf": ref_max,
        "onnxruntime": check["onnxruntime"],
        "pooled_first": len(pooled_first),
    }


def fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:.2e}" for k, v in d.items())


def write_provenance(out_dir: Path, summary: list[dict], argv: list[str]) -> None:
    """models/LICENSE.musicnn from the wheel's dist-info, and models/PROVENANCE.md."""
    import datetime
    import importlib.metadata as md

    import onnx
    import tensorflow as tf
    import tf2onnx

    dist = md.distribution("musicnn")
    licence = next((f for f in dist.files if f.name.upper().startswith("LICENSE")), None)
    if licence is None:
        sys.exit("the musicnn wheel has no LICENSE file; quote METADATA's License field instead")
    (out_dir / "LICENSE.musicnn").write_text(
        "ISC License: musicnn 0.1.0 (https://github.com/jordipons/musicnn), the code and pretrained\n"
        f"weights the models/*.onnx files are converted from. Text copied from the wheel's {licence}.\n\n"
        + licence.read_text()
    )
    req = (Path(__file__).with_name("requirements-musicnn.txt")).read_text()
    wheel_sha = req.split("--hash=sha256:")[1].split()[0]
    rows = "\n".join(
        f"| `{r['name']}.onnx` | {r['bytes']:,} | `{r['sha256']}` | {r['max_abs_diff']:.2e} |" for r in summary
    )
    per_output = "\n".join(
        f"- {r['name']}: " + ", ".join(f"{k} {v:.2e}" for k, v in r["per_output_max_abs_diff"].items())
        for r in summary
    )
    cmd = "make export-models  # = " + " ".join(["python", "tools/export/export_onnx.py", *argv])
    (out_dir / "PROVENANCE.md").write_text(f"""# Provenance of models/

Written by `tools/export/export_onnx.py`; rerun with `make export-models`.

- Source: PyPI wheel `musicnn-0.1.0-py3-none-any.whl`, sha256 `{wheel_sha}`
  (pinned with `--require-hashes` in `tools/export/requirements-musicnn.txt`), ISC licence
  (`LICENSE.musicnn`). Checkpoints: the `MTT_musicnn/`, `MSD_musicnn/`, `MTT_vgg/`, `MSD_vgg/`
  directories inside the installed package, restored from the explicit prefix `<dir>/`.
- Graph: `musicnn.models.define_model(x, False, name, 50)` (is_training as the Python
  constant False: batch norm uses moving statistics, dropout is absent), sigmoid on the
  logits, frozen with `convert_variables_to_constants`.
- Converter: tensorflow-cpu {tf.__version__}, tf2onnx {tf2onnx.__version__}, onnx {onnx.__version__},
  opset {OPSET}, Python {sys.version.split()[0]}; graph put in canonical order/names
  (`tools/export/canonical.py`) so reruns are byte-identical.
- Rewrite (`tools/export/pool_first.py`): every Conv -> ReLU -> BatchNorm -> MaxPool branch
  pools first (ReLU and batch norm are per-channel and monotone, so the numbers are the same
  up to float rounding); branches rewritten: {", ".join(f"{r['name']} {r['pooled_first']}" for r in summary)}.
- Check: onnxruntime {summary[0]['onnxruntime']} vs TF on a seeded random batch of 4 patches
  (uniform 0..4); pass when max |ONNX - TF| / max(1, max |TF|) <= 1e-4 per output.
- Command: `{cmd}`
- Date: {datetime.date.today().isoformat()}

| file | bytes | sha256 | max abs diff vs TF |
|---|---:|---|---:|
{rows}

Max abs diff per output (the pooled maps reach magnitudes of 15..80, so their absolute
differences are float32 summation-order noise):
{per_output}
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "models")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--runtime-python", default=os.environ.get("CADENZA_RUNTIME_PY", str(REPO / ".venv/bin/python")))
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max |ONNX - TF| / max(1, max |TF|)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--report", type=Path, help="write a JSON summary of the checks here")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in args.models:
        if not checkpoint_dir(name).is_dir():
            sys.exit(f"{name}: no checkpoint at {checkpoint_dir(name)}")
        summary.append(export_one(name, args.out, args.runtime_python, args.tolerance, args.seed))
    write_provenance(args.out, summary, sys.argv[1:])
    if args.report:
        args.report.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

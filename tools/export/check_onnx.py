#!/usr/bin/env python3
"""Run an exported model with onnxruntime on the batch saved by export_onnx.py and compare.

Runs in the project runtime venv (`.venv`, which has onnxruntime). Usage:
    check_onnx.py MODEL.onnx REF.npz
REF.npz holds `melspec` and the TF outputs by name. Prints one JSON line:
{"max_abs_diff": {output: float}, "max_abs_ref": {output: float}, "onnxruntime": version}.
"""

import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, ref = sys.argv[1], np.load(sys.argv[2])
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    if inputs != ["melspec"]:
        sys.exit(f"inputs are {inputs}, expected ['melspec']")
    names = [o.name for o in sess.get_outputs()]
    want = [k for k in ref.files if k != "melspec"]
    if sorted(names) != sorted(want):
        sys.exit(f"outputs are {names}, expected {want}")
    got = sess.run(names, {"melspec": ref["melspec"]})
    diffs, scale = {}, {}
    for n, g in zip(names, got):
        if g.shape != ref[n].shape or g.dtype != np.float32:
            sys.exit(f"{n}: {g.dtype}{g.shape}, TF gave {ref[n].dtype}{ref[n].shape}")
        diffs[n] = float(np.max(np.abs(g - ref[n])))
        scale[n] = float(np.max(np.abs(ref[n])))
    print(json.dumps({"max_abs_diff": diffs, "max_abs_ref": scale, "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()

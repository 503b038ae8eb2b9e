"""Pool before the per-channel work: the same numbers from a quarter less model time.

musicnn's front end runs, per branch, Conv -> ReLU -> BatchNorm -> MaxPool over the whole
frequency axis. ReLU and the inference-mode batch norm act on each channel alone and are
monotone in their input (increasing where the batch-norm scale a = gamma / sqrt(var + eps)
is positive, decreasing where it is negative), so the max can be taken first:

    max_f BN(relu(x_f)) = BN(relu(max_f x_f))          if a > 0
    max_f BN(relu(x_f)) = BN(relu(min_f x_f))          if a < 0
                        = BN(relu(-max_f(-x_f)))

and -x is the same convolution with negated weights and bias (exact in floating point).
So each such branch becomes

    Conv(s * W, s * b) -> MaxPool -> [Slice] -> Mul(s) -> ReLU -> BatchNorm

with s = sign(a) per channel: ReLU and batch norm run on the pooled map (1/59 of the
elements for the widest branch) instead of the full one, and onnxruntime no longer fuses a
ReLU into the convolution it then has to copy out of its blocked layout. The convolution's
output channels are padded with zero filters to a multiple of 16 (sliced off after the
pool), so onnxruntime keeps convolution and pool in its NCHWc layout (AVX-512 blocks of 16,
AVX2 of 8) and reorders only the pooled map.

Only rewrites a chain it can prove equivalent: each tensor of it used once, a pool
without padding or dilation, batch norm with constant statistics.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

BLOCK = 16


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def pool_before_batch_norm(model: onnx.ModelProto, block: int = BLOCK) -> list[str]:
    """Rewrite every Conv -> Relu -> BatchNormalization -> MaxPool chain in place.

    Returns the names of the convolutions whose branches were rewritten. New nodes are
    appended, so the caller puts the graph back in order (export_onnx.py: `canonicalize`).
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    for o in g.output:
        uses[o.name] = uses.get(o.name, 0) + 1
    consumer = {i: n for n in g.node for i in n.input}

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    new_inits: list[onnx.TensorProto] = []
    new_nodes: list[onnx.NodeProto] = []
    rewritten = []
    for bn in list(g.node):
        if bn.op_type != "BatchNormalization" or len(bn.input) != 5 or len(bn.output) != 1:
            continue
        pool = consumer.get(bn.output[0])
        relu = producer.get(bn.input[0])
        conv = producer.get(relu.input[0]) if relu is not None else None
        if (
            pool is None
            or pool.op_type != "MaxPool"
            or relu.op_type != "Relu"
            or conv is None
            or conv.op_type != "Conv"
            or uses.get(bn.output[0]) != 1
            or uses.get(relu.output[0]) != 1
            or uses.get(conv.output[0]) != 1
            or len(pool.output) != 1
            or any(_attr(pool, "pads", []))
            or any(d != 1 for d in _attr(pool, "dilations", []))
            or _attr(pool, "auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
            or _attr(conv, "group", 1) != 1
        ):
            continue
        stats = [const(i) for i in bn.input[1:]]
        w = const(conv.input[1])
        b = const(conv.input[2]) if len(conv.input) > 2 else None
        if any(s is None for s in stats) or w is None or (len(conv.input) > 2 and b is None):
            continue
        gamma, _beta, _mean, var = stats
        eps = _attr(bn, "epsilon", 1e-5)
        a = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
        s = np.where(a < 0, -1.0, 1.0).astype(np.float32)
        c = w.shape[0]
        cp = -(-c // block) * block
        if b is None:
            b = np.zeros(c, np.float32)
        w2 = np.zeros((cp, *w.shape[1:]), np.float32)
        w2[:c] = w * s.reshape(-1, *([1] * (w.ndim - 1)))
        b2 = np.zeros(cp, np.float32)
        b2[:c] = b * s
        base = conv.output[0]
        names = {k: f"{base}_{k}" for k in ("w", "b", "sign", "pooled", "sliced", "unsigned", "start", "end", "axis")}
        new_inits += [
            numpy_helper.from_array(w2, names["w"]),
            numpy_helper.from_array(b2, names["b"]),
            numpy_helper.from_array(s.reshape(1, c, *([1] * (w.ndim - 2))), names["sign"]),
        ]
        conv.input[1:] = [names["w"], names["b"]]
        out = pool.output[0]
        pool.input[0] = conv.output[0]
        pool.output[0] = names["pooled"]
        pooled = names["pooled"]
        if cp != c:
            new_inits += [
                numpy_helper.from_array(np.array([0], np.int64), names["start"]),
                numpy_helper.from_array(np.array([c], np.int64), names["end"]),
                numpy_helper.from_array(np.array([1], np.int64), names["axis"]),
            ]
            new_nodes.append(
                helper.make_node(
                    "Slice", [pooled, names["start"], names["end"], names["axis"]], [names["sliced"]]
                )
            )
            pooled = names["sliced"]
        new_nodes.append(helper.make_node("Mul", [pooled, names["sign"]], [names["unsigned"]]))
        relu.input[0] = names["unsigned"]
        bn.output[0] = out
        rewritten.append(conv.name or base)
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return rewritten

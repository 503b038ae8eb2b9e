"""Make a tf2onnx graph byte-for-byte reproducible.

tf2onnx 1.16.1 converts the same frozen graph into the same computation, but the node
order and the counter-suffixed names it invents (`BiasAdd__52`) vary from run to run. This
rewrites the graph in a canonical form: nodes in a topological order whose ties are broken
by a content hash of what each node computes, attributes sorted by name, and every node, intermediate tensor and
initializer renamed after its position. Graph input and output names are kept.
"""

from __future__ import annotations

import hashlib

import onnx


def _h(*parts: bytes | str) -> str:
    m = hashlib.sha256()
    for p in parts:
        m.update(p if isinstance(p, bytes) else p.encode())
        m.update(b"\0")
    return m.hexdigest()


def canonicalize(model: onnx.ModelProto) -> None:
    g = model.graph
    nodes = list(g.node)
    inits = {i.name: i for i in g.initializer}
    # Keyed by node index: protobuf wrapper objects are not stable enough for id().
    producer = {out: idx for idx, n in enumerate(nodes) for out in n.output}
    sig: dict[str, str] = {"": ""}  # value name -> content hash
    for i in g.input:
        sig[i.name] = _h("input", i.name)
    for name, t in inits.items():
        body = onnx.TensorProto()
        body.CopyFrom(t)
        body.name = ""
        sig[name] = _h("init", body.SerializeToString(deterministic=True))

    node_sig: dict[int, str] = {}

    def node_hash(idx: int) -> str:
        if idx not in node_sig:
            n = nodes[idx]
            ins = [value_hash(v) for v in n.input]
            attrs = sorted(a.SerializeToString(deterministic=True) for a in n.attribute)
            node_sig[idx] = _h(n.op_type, n.domain, *ins, *attrs)
        return node_sig[idx]

    def value_hash(v: str) -> str:
        if v not in sig:
            idx = producer[v]
            sig[v] = _h(node_hash(idx), str(list(nodes[idx].output).index(v)))
        return sig[v]

    for idx in range(len(nodes)):
        node_hash(idx)

    # Kahn's algorithm, always taking the ready node with the smallest hash.
    consumers: dict[str, list[int]] = {}
    pending = []
    for idx, n in enumerate(nodes):
        deps = {v for v in n.input if v in producer}
        pending.append(len(deps))
        for v in deps:
            consumers.setdefault(v, []).append(idx)
    ready = sorted((node_sig[idx], idx) for idx in range(len(nodes)) if pending[idx] == 0)
    order = []
    while ready:
        _, idx = ready.pop(0)
        order.append(nodes[idx])
        for v in set(nodes[idx].output):
            for c in consumers.get(v, []):
                pending[c] -= 1
                if pending[c] == 0:
                    ready.append((node_sig[c], c))
        ready.sort()
    if len(order) != len(nodes):
        raise ValueError("graph has a cycle")

    keep = {i.name for i in g.input} | {o.name for o in g.output} | {""}
    rename: dict[str, str] = {}
    init_order: list[str] = []
    for i, n in enumerate(order):
        for v in n.input:
            if v in inits and v not in rename:
                rename[v] = f"w{len(init_order)}"
                init_order.append(v)
        for k, v in enumerate(n.output):
            if v not in keep:
                rename[v] = f"{n.op_type.lower()}{i}" + (f"_{k}" if len(n.output) > 1 else "")
        n.name = f"{n.op_type}_{i}"
        attrs = sorted(n.attribute, key=lambda a: a.name)
        del n.attribute[:]
        n.attribute.extend(attrs)
        n.input[:] = [rename.get(v, v) for v in n.input]
        n.output[:] = [rename.get(v, v) for v in n.output]

    new_inits = []
    for old in init_order:
        t = inits[old]
        t.name = rename[old]
        new_inits.append(t)
    del g.node[:]
    g.node.extend(order)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    # Intermediate shape annotations are optional; drop them rather than keep stale names.
    del g.value_info[:]

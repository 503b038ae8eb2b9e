"""The musicnn TF1 graphs with named outputs, shared by export_onnx.py and make_fixtures.py.

Runs in the TF environment. The graph is built exactly as `musicnn.extractor` builds it,
except that `is_training` is the Python constant False (so batch norm uses its moving
statistics and dropout vanishes at graph-build time) and the outputs get stable names.
"""

from __future__ import annotations

from pathlib import Path

PATCH_FRAMES = 187
N_MELS = 96

_MUSICNN_NOTES = {
    "taggram": "tag probabilities after sigmoid, order = tags",
    "penultimate": "batch-normalised 200-unit dense layer before the output layer (ReLU then BN)",
    "mean_pool": "mean over time of the 753-channel mid-end feature map",
    "max_pool": "max over time of the 753-channel mid-end feature map",
}
_VGG_NOTES = {
    "taggram": "tag probabilities after sigmoid, order = tags",
    **{
        f"pool{i}": f"pool{i} feature map [N,T,F,128] averaged over its time and frequency axes"
        for i in range(1, 6)
    },
}
MODELS = {
    "MTT_musicnn": {"notes": _MUSICNN_NOTES},
    "MSD_musicnn": {"notes": _MUSICNN_NOTES},
    "MTT_vgg": {"notes": _VGG_NOTES},
    "MSD_vgg": {"notes": _VGG_NOTES},
}


def package_dir() -> Path:
    import musicnn

    return Path(musicnn.__file__).resolve().parent


def checkpoint_dir(name: str) -> Path:
    return package_dir() / name


def labels_for(name: str) -> list[str]:
    from musicnn import configuration as config

    return list(config.MTT_LABELS if name.startswith("MTT") else config.MSD_LABELS)


def build_session(name: str):
    """A restored session, its `melspec` placeholder and the named output tensors (in order)."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from musicnn import models

    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, N_MELS], name="melspec")
            n_classes = len(labels_for(name))
            if "vgg" in name:
                y, *pools = models.define_model(x, False, name, n_classes)
                outputs = {"taggram": tf.nn.sigmoid(y)}
                for i, p in enumerate(pools, start=1):
                    outputs[f"pool{i}"] = tf.reduce_mean(p, axis=[1, 2])
            else:
                y, _timbral, _temporal, _c1, _c2, _c3, mean_pool, max_pool, penultimate = models.define_model(
                    x, False, name, n_classes
                )
                outputs = {
                    "taggram": tf.nn.sigmoid(y),
                    "penultimate": penultimate,
                    "mean_pool": mean_pool,
                    "max_pool": max_pool,
                }
        with tf.name_scope("out"):
            outputs = {k: tf.identity(v, name=k) for k, v in outputs.items()}
        sess = tf.compat.v1.Session(graph=graph)
        # Restore every variable from the explicit prefix: the checkpoint files are named
        # `<dir>/.index`, `<dir>/.data-00000-of-00001`, so the prefix is `<dir>/`.
        tf.compat.v1.train.Saver().restore(sess, str(checkpoint_dir(name)) + "/")
    return sess, x, outputs

"""What a framework subject costs over its bare library call (prints a table).

    python benchmarks/bench_frameworks.py [--repeat 200] [--shape 8,16,6] [--axes 0,2]

For each installed framework subject (``bn_reference.subjects.FRAMEWORK_SUBJECTS``): the
median time of one call of the subject (NumPy in, NumPy out: contract checks, the
transpose/reshape into the API's layout, conversion, the cached jitted function / layer /
session, conversion back) against the median of the bare library call on inputs already
in the library's layout and types (a warm call: jit compiled, session built). Both after
warm-up, on the same shape, so the ratio is the adapter's overhead and not compilation
(a NEW shape costs one XLA compile, ~0.1-1 s, for the JAX-based subjects: that is what
dominates their time in the property suite, where shapes rarely repeat).
Keras subjects run in a child process: their figure includes the pipe round trip, and
their "bare" column is the same layer called in the child, measured there.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import numpy as np

from bn_reference.subjects import FRAMEWORK_SUBJECTS, load_subject


def _median_seconds(fn, repeat: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _bare(name: str, x: np.ndarray, axes, eps: float):
    """The bare library call (warm), on x already in the API's layout and type."""
    from bn_reference.subjects._framework import kept_last

    a, _ = kept_last(x, axes)
    if name.startswith("torch_"):
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(a)
        k = a.shape[0]
        w, b = torch.ones(k), torch.zeros(k)
        nc = t.reshape(k, a.shape[1], -1).transpose(0, 1).contiguous()
        calls = {
            "torch_batch_norm": lambda: F.batch_norm(nc, None, None, w, b, training=True, eps=eps),
            "torch_layer_norm": lambda: F.layer_norm(t, tuple(a.shape[1:]), eps=eps),
            "torch_group_norm": lambda: F.group_norm(t, 1, eps=eps),
            "torch_instance_norm": lambda: F.instance_norm(t.unsqueeze(0), None, None, w, b, use_input_stats=True, eps=eps),
        }
        return calls[name]
    if name.startswith(("jax_", "flax_")):
        import jax
        import jax.numpy as jnp

        module = load_subject(name).fn
        forward = jax.jit(module.forward, static_argnames=("axes",))
        xj, one, zero = jnp.asarray(x), jnp.float32(1.0), jnp.float32(0.0)
        return lambda: forward(xj, one, zero, axes=tuple(axes), epsilon=eps).block_until_ready()
    if name.startswith("ort_"):
        from bn_reference.subjects import onnxruntime_ops as O

        if name == "ort_batch_norm":
            nc, _ = O._batch_norm_layout(x, axes)
            k = nc.shape[1]
            s = O.session("BatchNormalization", nc.ndim, "float32", eps)
            feeds = {"X": nc, "scale": np.ones(k, np.float32), "B": np.zeros(k, np.float32), "input_mean": np.zeros(k, np.float32), "input_var": np.ones(k, np.float32)}
        elif name == "ort_layer_norm":
            s = O.session("LayerNormalization", a.ndim, "float32", eps)
            feeds = {"X": a, "Scale": np.ones(a.shape[1:], np.float32)}
        else:
            s = O.session("GroupNormalization", a.ndim, "float32", eps)
            feeds = {"X": a, "scale": np.ones(a.shape[1], np.float32), "bias": np.zeros(a.shape[1], np.float32)}
        return lambda: s.run(None, feeds)
    return None


_NEEDS = {"torch_": ("torch",), "jax_": ("jax",), "flax_": ("flax",), "ort_": ("onnxruntime",), "keras_jax_": ("jax", "keras"), "keras_torch_": ("torch", "keras"), "keras_tf_": ("tensorflow", "keras")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--shape", default="8,16,6")
    parser.add_argument("--axes", default="0,2")
    parser.add_argument("--only", default="", help="comma-separated subject names (default: all installed)")
    args = parser.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    axes = tuple(int(s) for s in args.axes.split(","))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    eps = 1e-3
    names = [n for n in FRAMEWORK_SUBJECTS if not args.only or n in args.only.split(",")]
    print(f"shape {shape}, axes {axes}, float32, median of {args.repeat} warm calls")
    print(f"{'subject':28s} {'subject call':>14s} {'bare call':>12s} {'ratio':>7s}")
    for name in names:
        prefix = max((p for p in _NEEDS if name.startswith(p)), key=len)
        if not all(importlib.util.find_spec(m) for m in _NEEDS[prefix]):
            print(f"{name:28s} not installed")
            continue
        subject = load_subject(name)
        t_subject = _median_seconds(lambda: subject(x, axes=axes, scale=1.0, offset=0.0, epsilon=eps, training=True), args.repeat)
        bare = _bare(name, x, axes, eps)
        if bare is None:
            print(f"{name:28s} {t_subject * 1e6:11.0f} us {'(child)':>12s}")
            continue
        t_bare = _median_seconds(bare, args.repeat)
        print(f"{name:28s} {t_subject * 1e6:11.0f} us {t_bare * 1e6:9.0f} us {t_subject / t_bare:6.1f}x")


if __name__ == "__main__":
    main()

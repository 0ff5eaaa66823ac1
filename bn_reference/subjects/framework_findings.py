"""What the property suite found in the framework subjects (``docs/conformance.md``).

Each ``Finding`` is a behaviour of a framework API that breaks a law of the contract, with
its cause read in the library's source (file and function), listed for every property and
dtype the cause reaches (derived from the cause, not only where a run's examples hit it).
``deviations.py`` turns every one into an xfail on exactly those (subject, property, dtype)
tests, under the built-in name and the ``module:attr`` spec, so a check of a built-in stays
green while the behaviour lasts; the conformance run (``selftest/conformance.py``) reports a
cause none of whose cells fails any more (an upstream fix), which fails CI: the signal to
delete the entry. ``kind`` is ``"deviation"`` (a law broken) or ``"refusal"`` (a law whose
whole domain the API refuses by design, declared with ``bn_refuses`` and checked by
``test_declared_refusal_is_a_clear_error``).

Entries are added only after measuring (``tox -e frameworks`` runs the suite with
``--runxfail`` and reports any finding that stopped failing).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding", "FINDINGS", "MODULES", "specs_of"]

# built-in name prefix -> module (the ``module:attr`` spec of each subject)
MODULES = {
    "torch_": "bn_reference.subjects.pytorch",
    "jax_": "bn_reference.subjects.jax_nn",
    "flax_": "bn_reference.subjects.flax_linen",
    "ort_": "bn_reference.subjects.onnxruntime_ops",
    "keras_jax_": "bn_reference.subjects.keras_backends",
    "keras_torch_": "bn_reference.subjects.keras_backends",
    "keras_tf_": "bn_reference.subjects.keras_layers",
}


def specs_of(name: str) -> tuple[str, str]:
    """The two specs a built-in framework subject may be selected by: its name and its
    ``module:attr`` (``subjects.FRAMEWORK_SUBJECTS``; by ``MODULES``' prefixes otherwise)."""
    from bn_reference.subjects import FRAMEWORK_SUBJECTS

    if name in FRAMEWORK_SUBJECTS:
        return name, FRAMEWORK_SUBJECTS[name]
    prefix = max((p for p in MODULES if name.startswith(p)), key=len)
    return name, f"{MODULES[prefix]}:{name}"


@dataclass(frozen=True)
class Finding:
    subjects: tuple[str, ...]  # built-in names
    prop: str  # test function name
    cause: str  # the behaviour, and the library source (file, function) that produces it
    dtypes: tuple[str, ...] | None = None  # None: every declared dtype
    kind: str = "deviation"  # or "refusal"


_ONE_PASS_JAX = (
    "one-pass variance: jax.nn.standardize's default algorithm='fast' computes "
    "var = mean(x^2) - mean(x)^2, clipped at 0 (jax/_src/nn/functions.py, standardize(): "
    "`variance = jnp.mean(jnp.square(x), axis, keepdims=True, where=where) - jnp.square(mean)`, "
    "then `jnp.clip(variance, 0)`): at |mean| >> std the two terms cancel, and the variance "
    "loses up to all of its digits (the relative error is about eps * mean^2 / var). "
    "algorithm='stable' (mean((x - mean)^2)) passes the same laws."
)

_ONE_PASS_FLAX = (
    "one-pass variance: Flax's default use_fast_variance=True computes var = E[x^2] - E[x]^2 "
    "(flax/linen/normalization.py, _compute_stats(): `mu, mu2 = maybe_distributed_mean(x, "
    "_abs_sq(x))`, `var = jnp.maximum(0.0, mu2 - _abs_sq(mu))`): catastrophic cancellation at "
    "|mean| >> std (relative variance error about eps * mean^2 / var). use_fast_variance=False "
    "(two-pass: mean of |x - mu|^2) passes the same laws."
)

_TORCH_N1 = (
    "refusal by design: in training mode PyTorch raises ValueError('Expected more than 1 value per "
    "channel when training') when a channel has one value (torch/nn/functional.py, batch_norm() -> "
    "_verify_batch_size(): `size_prods = size[0] * prod(size[2:])`, raise if == 1); for N = 1 the "
    "contract's answer is y = beta. Declared (bn_refuses), so the other laws draw no such input; "
    "this property's whole domain is N = 1, so none can be drawn (Hypothesis: FailedHealthCheck, "
    "every input filtered). Checked instead by test_declared_refusal_is_a_clear_error."
)

_TORCH_IN_N1 = (
    "refusal by design: F.instance_norm raises ValueError('Expected more than 1 spatial element when "
    "training') when prod(size[2:]) == 1 (torch/nn/functional.py, instance_norm() -> "
    "_verify_spatial_size()); for N = 1 the contract's answer is y = beta. Declared (bn_refuses), "
    "so no input of this property (N = 1 only) can be drawn (FailedHealthCheck); checked by "
    "test_declared_refusal_is_a_clear_error."
)

_TORCH_EPS0 = (
    "F.batch_norm refuses epsilon = 0 in training: ValueError('batch_norm eps must be positive "
    "during training') (torch/nn/functional.py, batch_norm(): `if training and eps <= 0.0: raise`). "
    "The contract allows epsilon = 0 for a slice with variance > 0; this law normalizes an already "
    "normalized output again with epsilon = 0."
)

_TORCH_ZERO_CHANNELS = (
    "an input with zero elements and zero channels (C = 0) raises IndexError('select(): index 0 out of "
    "range for tensor of size [0]') once a weight is passed: the empty-input shortcut returns "
    "`input.clone() * weight[0] + bias[0]` (aten/src/ATen/native/Normalization.cpp, "
    "_batch_norm_impl_index(): `if (weight.defined()) out = out * weight[0];`), and weight[0] does not "
    "exist when C = 0 (without a weight it returns the empty output). The contract: an empty output "
    "of x's shape."
)

_JAX_FAST_F16_SQUARE = (
    "float16 squares overflow in the one-pass variance: jnp.square(x) is formed in x's dtype before "
    "the mean (|x| > 255.9 gives inf), so E[x^2] - E[x]^2 is inf - finite or inf - inf (NaN). The "
    "same " + _ONE_PASS_JAX
)

_JAX_STABLE_F16_SQUARE = (
    "jax.nn.standardize(algorithm='stable') forms the squared deviations in x's dtype: "
    "`jnp.mean(jnp.square(jnp.subtract(x, mean)), ...)` (jax/_src/nn/functions.py, standardize()); "
    "jnp.mean accumulates float16 in float32, but each (x - mean)^2 is rounded to float16 first and "
    "overflows to inf for |x - mean| > 255.9 (variance inf, y = 0 * gamma + beta), where the "
    "half-precision contract (float32 accumulation) has the variance finite."
)

_ORT_EPSILON_FLOAT32 = (
    "ONNX attributes of type FLOAT are 32-bit (onnx/onnx.proto, AttributeProto `float f`), so "
    "BatchNormalization's `epsilon` is fl32(eps) whatever x's dtype: a float64 model normalizes with "
    "sqrt(var + fl32(eps)). Measured: eps = 1e-3 differs from the reference by ~1e-10 (~3e5 times "
    "the float64 bound); eps = 0.5 (exact in float32) or the reference run with fl32(1e-3) agree to 1 ulp. "
    "RMSNormalization-23 likewise (its kernel reads `GetAttr<float>(\"epsilon\")`, onnxruntime/core/"
    "providers/cpu/nn/layer_norm_impl.cc, LayerNormImpl): sqrt(ms + fl32(eps)) in float64, measured "
    "relative error 1.4e-8 at ms << eps = 1e-3, and 0 against the reference run with fl32(eps)."
)

_ORT_GROUP_NORM_ONE_PASS = (
    "ONNX Runtime 1.32 has no CPU kernel for GroupNormalization-21 and runs the ONNX function body "
    "(onnx/defs/nn/defs.cc, GroupNormalization-21 context-dependent function; print it with "
    "onnx.defs.get_schema('GroupNormalization', 21).get_context_dependent_function): "
    "`Var = Sub(MeanOfSquare, SquareOfMean)` with MeanOfSquare = ReduceMean(Mul(X3D, X3D)), a "
    "one-pass variance, not clipped at 0 (a negative Var below -eps gives sqrt of a negative: NaN), "
    "and with stash_type = 1 every type is first cast to float32 (`XU = Cast<to = 1>(X)`), so a "
    "float64 input is normalized in float32; epsilon is a float32 Constant. Catastrophic "
    "cancellation at |mean| >> std (e.g. x = [100.12573, 99.8679, 100.64042] float32: err 2.4e-3, "
    "5.4 times the bound)."
)

_ORT_GROUP_NORM_EMPTY = (
    "GroupNormalization-21's function body reshapes with `Shape3D = [0, 0, -1]` (Reshape's default "
    "allowzero = 0: a 0 means 'copy that input dimension'), and for an input with a zero-size "
    "dimension the -1 cannot be inferred: ORT raises 'The input tensor cannot be reshaped to the "
    "requested shape' (onnxruntime/core/providers/cpu/tensor/reshape_helper.h, ReshapeHelper) "
    "instead of returning an empty output."
)

_ORT_LAYER_NORM_EMPTY = (
    "ONNX Runtime's CPU LayerNormalization kernel refuses a normalized part of size 0: "
    "'Size of X.shape[axis:] must be at least 1, got 0' (INVALID_ARGUMENT, raised by the kernel's "
    "input check), where the contract returns an empty output of x's shape. RMSNormalization-23 runs "
    "the same kernel (onnxruntime/core/providers/cpu/nn/rms_norm.cc: `class RMSNorm : LayerNormImpl`, "
    "simplified) and raises the same error."
)

_KERAS_TORCH_ONE_PASS = (
    "one-pass variance in Keras 3's PyTorch backend: keras.ops.moments, which BatchNormalization calls, "
    "computes `variance = torch.mean(torch.square(x), dim=axes, keepdim=True) - torch.square(mean)` "
    "(keras/src/backend/torch/nn.py, moments(): 'Var = E[|x|^2] - |E[x]|^2, It is faster but less "
    "numerically stable'), not clipped at 0 for float32: catastrophic cancellation at |mean| >> std, and "
    "a negative variance below -eps gives NaN (x = [1000.0013, 999.99866]: y = NaN). LayerNormalization "
    "on this backend normalizes through torch's own layer_norm kernel and agrees; its keras.ops.moments "
    "(this subject's `moments`) is the same one-pass formula."
)

_XLA_SQUARE_OF_MEAN = (
    _ONE_PASS_FLAX
    + " Under jax.jit, XLA rewrites the square of the mean, square(sum(x) * (1/N)), as "
    "sum(x) * sum(x) * (1/N^2) (print it: jax.jit(lambda a: jax.lax.square(a.mean(1))).lower(a)"
    ".compile().as_text() shows `multiply(reduce_sum, reduce_sum)` then `multiply(.., 1/N^2)`), so "
    "E[x]^2 overflows to inf once |sum(x)| > sqrt(float32 max) ~ 1.8e19 while E[x]^2 itself is finite: "
    "var = max(0, E[x^2] - inf) = 0 and y = (x - mu) / sqrt(eps) (measured: bfloat16 x of about "
    "-3.7e18, N = 5, computed in float32: var 0 instead of 2.4e35, y ~ 2e19)."
)

# Flax use_fast_variance=True: per layer, the properties and dtypes that fail (measured).
_FLAX_ONE_PASS_CELLS = {
    "layer_norm": {
        "test_agrees_with_float64_reference": ("float32",),
        "test_epsilon_sensitivity": ("float32",),
        "test_huge_values_up_to_the_overflow_limit": ("float32", "float64"),
        "test_idempotence": ("float32", "float64"),
        "test_permutation_equivariance": ("float32", "float64"),
        "test_translation_invariance": ("float32", "float64"),
        "test_unit_variance": ("float32", "float64"),
    },
    "batch_norm": {
        "test_agrees_with_float64_reference": ("float32", "float64"),
        "test_huge_values_up_to_the_overflow_limit": ("float32", "float64"),
        "test_idempotence": ("float32", "float64"),
        "test_moment_decomposition": ("float32", "float64"),
        "test_nonfinite_value_stays_in_its_slice": ("float32",),
        "test_parallel_merge": ("float32", "float64"),
        "test_translation_invariance": ("float32", "float64"),
        "test_unit_variance": ("float32", "float64"),
    },
    "group_norm": {
        "test_agrees_with_float64_reference": ("float32", "float64"),
        "test_epsilon_sensitivity": ("float64",),
        "test_huge_values_up_to_the_overflow_limit": ("float32", "float64"),
        "test_idempotence": ("float32", "float64"),
        "test_nonfinite_value_stays_in_its_slice": ("float32", "float64"),
        "test_permutation_equivariance": ("float32", "float64"),
        "test_translation_invariance": ("float32",),
        "test_unit_variance": ("float32", "float64"),
    },
}

_KERAS_FLOAT64_IN_FLOAT32 = (
    "a float64 layer normalizes in float32: BatchNormalization.call() "
    "(keras/src/layers/normalization/batch_normalization.py) and ops.layer_normalization "
    "(keras/src/ops/nn.py, _layer_normalization()) compute in `compute_dtype = "
    "backend.result_type(x.dtype, \"float32\")` to upcast half precision, and Keras 3's "
    "result_type maps every 64-bit result to 32 bits (keras/src/backend/common/dtypes.py, "
    "_lattice_result_type(): `out_dtype = BIT64_TO_BIT32_DTYPE.get(out_dtype, out_dtype)`, "
    "'to be aligned with JAX's default behavior'; BIT64_TO_BIT32_DTYPE keeps float64 on TensorFlow "
    "only), so result_type('float64', 'float32') is 'float32' on the JAX and PyTorch backends: x is "
    "cast to float32, normalized, and the output cast back to "
    "float64 (measured: errors ~1e-8, float32's rounding, against a float64 bound of ~1e-15; "
    "|x| > 3.4e38 becomes inf, y = NaN)."
)

_KERAS_TORCH_BF16_MOMENTS = (
    _KERAS_TORCH_ONE_PASS
    + " keras.ops.moments on this backend upcasts float16 only (`if ori_dtype == \"float16\"`), so "
    "a bfloat16 input's one-pass variance is formed in bfloat16 (8 significant bits): measured "
    "variance -0.0156 for a slice whose variance is 0.00075."
)

# Keras 3 on the JAX and PyTorch backends: every float64 cell that failed (measured), one cause.
# BatchNormalization fails the same 15 properties on both backends.
_KERAS_BN_FLOAT64_FAILS = (
    "test_affine_acts_per_feature", "test_agrees_with_float64_reference", "test_constant_slices_give_offset",
    "test_epsilon_sensitivity", "test_huge_values_up_to_the_overflow_limit", "test_idempotence",
    "test_moment_decomposition", "test_nonfinite_value_stays_in_its_slice", "test_parallel_merge",
    "test_permutation_equivariance", "test_scale_identity", "test_single_element_slices_give_the_offset",
    "test_translation_invariance", "test_unit_variance", "test_zero_mean",
)
_KERAS_FLOAT64_CELLS = {
    "keras_torch_batch_norm": _KERAS_BN_FLOAT64_FAILS,
    "keras_jax_batch_norm": _KERAS_BN_FLOAT64_FAILS,
    "keras_jax_layer_norm": (
        "test_agrees_with_float64_reference", "test_constant_slices_give_offset", "test_epsilon_sensitivity",
        "test_huge_values_up_to_the_overflow_limit", "test_idempotence", "test_nonfinite_value_stays_in_its_slice",
        "test_permutation_equivariance", "test_translation_invariance", "test_unit_variance", "test_zero_mean",
    ),
    "keras_torch_layer_norm": (
        "test_agrees_with_float64_reference", "test_epsilon_sensitivity", "test_huge_values_up_to_the_overflow_limit",
        "test_idempotence", "test_nonfinite_value_stays_in_its_slice", "test_permutation_equivariance",
        "test_translation_invariance", "test_unit_variance", "test_zero_mean",
    ),
}

_JAX_ONE_PASS_LAWS = (
    "test_agrees_with_float64_reference", "test_agrees_beyond_16_bit_counts", "test_huge_values_up_to_the_overflow_limit",
    "test_idempotence", "test_nonfinite_value_stays_in_its_slice", "test_permutation_equivariance",
    "test_translation_invariance", "test_unit_variance", "test_epsilon_sensitivity", "test_scale_identity",
    "test_constant_slices_give_offset",
)
_JAX_STABLE_F16_LAWS = (
    "test_agrees_with_float64_reference", "test_agrees_beyond_16_bit_counts", "test_huge_values_up_to_the_overflow_limit",
    "test_scale_identity", "test_unit_variance", "test_translation_invariance", "test_nonfinite_value_stays_in_its_slice",
)

_JAX_HALF_OFFSET_GRADIENT = (
    "the gradient of `+ offset` (RMSNorm has no bias: the adapter adds the contract's offset after "
    "the layer, in JAX, in x's dtype, and jax.vjp differentiates it) is JAX's transpose of the "
    "broadcast, `reduce_sum(ct, axes)` in the cotangent's dtype (jax/_src/lax/lax.py, "
    "_broadcast_in_dim_transpose_rule() and _unbroadcast(): no upcast, unlike jnp.sum), which XLA's "
    "CPU reduction accumulates in float16/bfloat16 (measured: lax.reduce_sum of a (246, 4) float16 "
    "array gives 233.2 where the exact sum is 233.14 and jnp.sum, which upcasts, 233.1); the "
    "gradient contract accumulates in float32 (bn_reference/mathematics/gradients.py, item 6). "
    "Observed: dbeta of a (246, 4) float16 dy 966.0 for 967.59 (err/bound 1.27); of a (31,) "
    "bfloat16 dy -312 for -314.56 (1.03). Flax's own arithmetic (dx, dgamma: float32 statistics "
    "and scale product) passes."
)

_KERAS_RMS_FLOAT64_IN_FLOAT32 = (
    "a float64 input is normalized in float32: keras.ops.rms_normalization, which "
    "keras.layers.RMSNormalization.call() calls, computes in `compute_dtype = "
    "backend.result_type(x.dtype, \"float32\")` (keras/src/ops/nn.py, _rms_normalization(): 'Computes "
    "in at least float32 precision for stability in half precision training'), and Keras 3's "
    "result_type maps float64 to float32 on every backend but TensorFlow (keras/src/backend/common/"
    "dtypes.py, BIT64_TO_BIT32_DTYPE: `\"float64\": \"float64\" if config.backend() == \"tensorflow\" "
    "else \"float32\"`, applied by _lattice_result_type()): x is cast to float32, normalized (on "
    "PyTorch by torch.nn.functional.rms_norm, on JAX by mean, rsqrt and multiply), and cast back to "
    "float64 (measured: err/bound up to 6e7 against the float64 model; squares beyond 3.4e38 are inf "
    "in float32, y = 0 or NaN). keras.ops.rms_normalization on JAX multiplies by the scale it is "
    "given in float32 too, so a per-feature scale is rounded to float32 there (the affine law). "
    "keras_tf_rms_norm and keras_tf_ops_rms_norm keep float64 and pass."
)
# Every law that compares a float64 output with a float64-precision bound or with another call
# at a different scale (measured on both backends, both APIs, under the default profile; the
# scale identity is reached where a x leaves float32's range: its squares overflow).
_KERAS_RMS_FLOAT64_LAWS = (
    "test_agrees_beyond_16_bit_counts", "test_agrees_with_float64_reference", "test_constant_slices_keep_their_sign",
    "test_huge_values_up_to_the_overflow_limit", "test_idempotence", "test_nonfinite_value_stays_in_its_slice",
    "test_permutation_equivariance", "test_rms_epsilon_sensitivity", "test_translation_moves_the_output",
    "test_unit_mean_square", "test_scale_identity",
)
_KERAS_RMS_FLOAT64_CELLS = {
    "keras_jax_rms_norm": _KERAS_RMS_FLOAT64_LAWS,
    "keras_torch_rms_norm": _KERAS_RMS_FLOAT64_LAWS,
    "keras_torch_ops_rms_norm": _KERAS_RMS_FLOAT64_LAWS,  # the scale applied after, in float64
    "keras_jax_ops_rms_norm": (*_KERAS_RMS_FLOAT64_LAWS, "test_affine_acts_per_feature"),  # the scale inside, in float32
}

# Synchronized batch norm (the replicas group; bn_replicas = 2). Flax: measured 2026-12-06 under
# ci and conformance, both replicas laws fail in every dtype, use_fast_variance True and False
# (the cause is the weighting, not the variance: any draw with unequal or empty shards).
_FLAX_PMEAN_EQUAL_WEIGHTS = (
    "Flax's BatchNorm(axis_name=...) synchronizes each replica's mean (and mean of |x|^2 with "
    "use_fast_variance=True) with lax.pmean over the axis: every replica weighted 1/R, whatever "
    "the number of examples it holds (flax/linen/normalization.py, _compute_stats(), "
    "maybe_distributed_mean(): `mus = tuple(x.mean(axes, where=mask) for x in xs)`, then "
    "`lax.pmean(jnp.stack(mus, axis=0), axis_name, ...)`). Right for equal shards (checked: "
    "(4, 4) within the bound); for unequal ones the moments are not the batch's (a (3, 5) split: "
    "err 0.15, err/bound 1.1e4), and a replica with no examples contributes x.mean(where=all "
    "False) = NaN, which pmean spreads to every replica (sizes (0, 1): y = NaN). shard_map "
    "needs equal blocks, so unequal shards reach the layer padded, the padding masked out with "
    "its own mask argument."
)
# Keras on TensorFlow: measured under ci, both replicas laws fail in float32 and float64 (shrunk:
# x = float32 [100.34558, 100.82162], err/bound 14); listed for every dtype the cause reaches:
# the one-pass variance runs in float32 for float16/bfloat16 x too, and a float16 slice can have
# |mean| / std up to 2^11 (relative variance error up to 2^-24 2^22 = 1/4), a bfloat16 one up
# to 2^8 (2^-8, bfloat16's own u): the half-precision draws did not reach it under ci.
_KERAS_SYNC_ONE_PASS = (
    "Keras' synchronized moments are one-pass: keras/src/backend/tensorflow/nn.py, "
    "_compute_moments_sync(), all-reduces each replica's reduce_sum(x), reduce_sum(square(x)) and "
    "count, then `variance = tf.maximum(y_squared_mean - tf.square(mean), 0.0)` (`# var = E(x^2) - "
    "E(x)^2`): catastrophic cancellation at |mean| >> std (relative variance error about "
    "eps * mean^2 / var), outside the merge bound as the naive one-pass variance is outside the "
    "single-device bound (tolerance item 2). The replicas are weighted by their counts (right), "
    "an empty one included (divide_no_nan)."
)
_REPLICAS_LAWS = ("test_replicas_agree_with_batch_norm_of_the_whole", "test_replicas_independent_of_the_split")

FINDINGS: list[Finding] = [
    # inductor_batch_norm is torch.compile(F.batch_norm): Dynamo runs the same Python checks of
    # torch/nn/functional.py on fake tensors while tracing, so the same refusals and findings
    # (measured: the eps = 0 ValueError comes back wrapped in TorchRuntimeError; the N = 1
    # refusal leaves the single-element law no input; the empty weight's IndexError).
    Finding(("torch_batch_norm", "inductor_batch_norm"), "test_single_element_slices_give_the_offset", _TORCH_N1, kind="refusal"),
    Finding(("torch_instance_norm",), "test_single_element_slices_give_the_offset", _TORCH_IN_N1, kind="refusal"),
    Finding(("torch_batch_norm", "inductor_batch_norm"), "test_idempotence", _TORCH_EPS0),
    # The cause does not depend on the dtype (weight[0] of an empty weight): every dtype, whether
    # or not a run's examples zero a kept axis there (issue 24: listed by cause, not by reach).
    Finding(("torch_batch_norm", "inductor_batch_norm"), "test_zero_size_dimensions_give_an_empty_output", _TORCH_ZERO_CHANNELS),
    Finding(("torch_instance_norm",), "test_zero_size_dimensions_give_an_empty_output", _TORCH_ZERO_CHANNELS),
    # jax.nn.standardize(algorithm="fast"): one cause, the one-pass variance, in every dtype
    # (issue 24: listed by cause, for every law it reaches: those that compare an output with
    # the exact variance's effect, or two outputs whose variances cancel differently), in
    # float16 with the squares' overflow on top; algorithm="stable": the float16 squares only,
    # for the laws whose draws reach |x - mean| > 255.9 (data, shifts and scalings of that size).
    *(
        Finding(("jax_standardize",), prop, _ONE_PASS_JAX, ("float32", "float64", "bfloat16"))
        for prop in _JAX_ONE_PASS_LAWS
    ),
    *(
        Finding(("jax_standardize",), prop, _JAX_FAST_F16_SQUARE, ("float16",))
        for prop in _JAX_ONE_PASS_LAWS + ("test_zero_mean",)
    ),
    *(
        Finding(("jax_standardize_stable",), prop, _JAX_STABLE_F16_SQUARE, ("float16",))
        for prop in _JAX_STABLE_F16_LAWS
    ),
    # fl32(eps) differs from eps only at float64 precision: float64, and the laws that compare
    # an output with epsilon's exact effect (not those with the same epsilon on both sides, eps
    # = 0, a power-of-two scaled eps, or a zero-mean or constant-slice law eps does not enter).
    *(
        Finding(("ort_batch_norm",), prop, _ORT_EPSILON_FLOAT32, ("float64",))
        for prop in (
            "test_agrees_with_float64_reference", "test_agrees_beyond_16_bit_counts", "test_epsilon_sensitivity",
            "test_nonfinite_value_stays_in_its_slice", "test_unit_variance", "test_huge_values_up_to_the_overflow_limit",
        )
    ),
    # float16 x is cast to float32 first (stash_type = 1). The default half-precision draws keep
    # |mu| / sigma <= 34 and constant slices within 34 sqrt(eps) (strategies.max_condition,
    # resolvable_constant_slices: where a correct folded kernel resolves the output); there the
    # float32 one-pass variance errs by ~ 2^-24 (mu^2 + sigma^2), within the strict contract, and
    # test_agrees_with_float64_reference passes in float16 (it failed before the constant-slice
    # rule, on x = [14.664] * 6, eps = 1e-5: NaN). huge_cases keeps large constant slices, and
    # there the float16 cell fails with NaN (measured: x = [-255.6] * 5, eps = 1e-3).
    # Listed by cause (issue 24): the one-pass float32 variance can break every law that compares
    # output values against a bound tighter than its cancellation, in every dtype (a float64
    # input is computed in float32; float16 is cast to float32 and reached where the draws keep
    # large |mu| / sigma: huge values, translation by c). Not reached, by construction: laws that
    # compare two calls on the same contiguous input (layout invariance, affine after the call)
    # and N = 1 (x*x - x*x = 0 exactly).
    *(
        Finding(("ort_group_norm",), prop, _ORT_GROUP_NORM_ONE_PASS)
        for prop in (
            "test_agrees_with_float64_reference", "test_agrees_beyond_16_bit_counts", "test_constant_slices_give_offset",
            "test_epsilon_sensitivity", "test_huge_values_up_to_the_overflow_limit", "test_idempotence",
            "test_nonfinite_value_stays_in_its_slice", "test_permutation_equivariance", "test_translation_invariance",
            "test_unit_variance", "test_zero_mean", "test_scale_identity",
        )
    ),
    # Both reshape/kernel refusals happen for any dtype with a zero-size dimension.
    Finding(("ort_group_norm",), "test_zero_size_dimensions_give_an_empty_output", _ORT_GROUP_NORM_EMPTY),
    Finding(("ort_layer_norm", "ort_rms_norm"), "test_zero_size_dimensions_give_an_empty_output", _ORT_LAYER_NORM_EMPTY),
    # ort_rms_norm in float64: every law that compares an output with epsilon's exact effect (as
    # for ort_batch_norm; not the laws with the same epsilon on both sides, or a power-of-two
    # scaled one: permutation, layout, affine, scale identity), the RMSNorm laws included.
    *(
        Finding(("ort_rms_norm",), prop, _ORT_EPSILON_FLOAT32, ("float64",))
        for prop in (
            "test_agrees_with_float64_reference", "test_agrees_beyond_16_bit_counts", "test_nonfinite_value_stays_in_its_slice",
            "test_huge_values_up_to_the_overflow_limit", "test_unit_mean_square", "test_rms_epsilon_sensitivity",
            "test_constant_slices_keep_their_sign", "test_translation_moves_the_output",
        )
    ),
    # Keras on the PyTorch backend: the one-pass variance of its moments, listed for every law and
    # dtype it reaches (issue 24; float64 has its own cause above, computed in float32). The
    # layer upcasts half precision to float32, where float16's resolvable |mean| / std (up to
    # 2048) still cancels a quarter of the variance (measured with the new draws: constant
    # slices and huge values in float16, epsilon sensitivity in float32). The laws of two calls
    # on the same x (scale identity, affine per feature) are reached too: both calls share the
    # cancelled variance, so x_hat is larger than a correct kernel's can be, and so is the
    # rounding of gamma x_hat + beta, which the bound prices at the true |x_hat| (measured at
    # 100 examples: affine per feature in float32, x of mean -1000 and spread 1, N = 2, eps = 1e-12:
    # y = -66637.98, err/bound 1.85).
    *(
        Finding(("keras_torch_batch_norm",), prop, _KERAS_TORCH_ONE_PASS, ("float32", "float16", "bfloat16"))
        for prop in sorted(
            set(_JAX_ONE_PASS_LAWS) | {"test_moment_decomposition", "test_parallel_merge", "test_zero_mean", "test_affine_acts_per_feature"}
        )
    ),
    # LayerNormalization normalizes through torch's own layer_norm (it agrees); its
    # keras.ops.moments, the subject's `moments`, is the one-pass formula.
    *(
        Finding(("keras_torch_layer_norm",), prop, _KERAS_TORCH_ONE_PASS, dtypes)
        for prop, dtypes in (
            ("test_parallel_merge", ("float32", "float64", "float16")),
            ("test_moment_decomposition", ("float32", "float64", "float16", "bfloat16")),
        )
    ),
    Finding(("keras_torch_layer_norm",), "test_parallel_merge", _KERAS_TORCH_BF16_MOMENTS, ("bfloat16",)),
    # float64 computed in float32: every law that compares a float64 output with a float64 bound,
    # the N > 65,536 agreement law among them (the new draws reached it).
    *(
        Finding((name,), prop, _KERAS_FLOAT64_IN_FLOAT32, ("float64",))
        for name, props in _KERAS_FLOAT64_CELLS.items()
        for prop in dict.fromkeys(props + ("test_agrees_beyond_16_bit_counts",))
    ),
    *(Finding((name,), prop, _KERAS_RMS_FLOAT64_IN_FLOAT32, ("float64",)) for name, props in _KERAS_RMS_FLOAT64_CELLS.items() for prop in props),
    # Flax use_fast_variance=True (the default): one cause, the one-pass variance, listed for
    # every dtype and law it reaches (issue 24: by cause, not by the cells a run's examples hit;
    # the new draws failed 10 cells the measured lists left out, zero mean among them: with the
    # variance cancelled to 0, inv = eps^-1/2 multiplies the mean's rounding). Half precision is
    # reduced in float32, where |mean| / std up to 2048 (float16's resolvable spread) still
    # cancels 2^-24 * 2048^2 = 25% of the variance.
    *(
        Finding((f"flax_{op}",), prop, _ONE_PASS_FLAX, dtypes)
        for op in _FLAX_ONE_PASS_CELLS
        for prop in sorted(set(_JAX_ONE_PASS_LAWS) | {"test_zero_mean"} | {p for p in _FLAX_ONE_PASS_CELLS[op]})
        for dtypes in (tuple(d for d in ("float32", "float64", "float16", "bfloat16") if not (op == "batch_norm" and prop == "test_huge_values_up_to_the_overflow_limit" and d == "bfloat16")),)
    ),
    Finding(("flax_batch_norm",), "test_huge_values_up_to_the_overflow_limit", _XLA_SQUARE_OF_MEAN, ("bfloat16",)),
    # flax_rms_norm: its only gradient law that sums dy alone over the reduced axes (dbeta), in
    # both half-precision dtypes (the cause is the dtype of the sum, not the draw).
    Finding(("flax_rms_norm",), "test_dbeta", _JAX_HALF_OFFSET_GRADIENT, ("float16", "bfloat16")),
    *(Finding(("flax_sync_batch_norm", "flax_sync_batch_norm_two_pass"), prop, _FLAX_PMEAN_EQUAL_WEIGHTS) for prop in _REPLICAS_LAWS),
    *(Finding(("keras_tf_sync_batch_norm",), prop, _KERAS_SYNC_ONE_PASS) for prop in _REPLICAS_LAWS),
]

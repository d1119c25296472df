"""Bad input fails early with a ValueError or TypeError whose message names what was
expected and what was given (never an IndexError from deep inside NumPy)."""
import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import Tensor, nn


def t(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype))


X = t(1, 4, 5, 5)       # (N, C, H, W)
W = t(6, 2, 3, 3)       # grouped weight: C/groups = 2


# (id, callable, exception, regex on the message's key words: what was expected and what was given)
CASES = [
    # ---- wrong number of dimensions
    ("conv2d-input-3d", lambda: F.conv2d(t(4, 5, 5), W, groups=2), ValueError,
     r"conv2d: input must have 4 dimensions, got shape \(4, 5, 5\)"),
    ("conv2d-weight-2d", lambda: F.conv2d(X, t(6, 4)), ValueError,
     r"weight must have 4 dimensions, got shape \(6, 4\)"),
    ("max_pool2d-input-3d", lambda: F.max_pool2d(t(4, 5, 5), 2), ValueError, r"must have 4 dimensions, got shape"),
    ("adaptive_avg_pool2d-input-3d", lambda: F.adaptive_avg_pool2d(t(4, 5, 5), 2), ValueError,
     r"must have 4 dimensions, got shape \(4, 5, 5\)"),
    ("local_response_norm-input-2d", lambda: F.local_response_norm(t(2, 3), 3), ValueError,
     r"at least 3 dimensions \(N, C, \.\.\.\), got shape \(2, 3\)"),
    ("cross_entropy-logits-1d", lambda: F.cross_entropy(t(3), [0]), ValueError,
     r"logits must have 2 dimensions, got shape \(3,\)"),
    ("linear-weight-3d", lambda: F.linear(t(2, 4), t(3, 4, 1)), ValueError, r"weight must have 2 dimensions"),
    # ---- channels
    ("conv2d-channels-do-not-match-weight", lambda: F.conv2d(t(1, 3, 5, 5), t(6, 2, 3, 3)), ValueError,
     r"input has 3 channels .* weight of shape \(6, 2, 3, 3\) with groups=1 expects 2"),
    ("conv2d-channels-not-divisible-by-groups", lambda: F.conv2d(t(1, 5, 5, 5), W, groups=2), ValueError,
     r"input channels \(5\) must be divisible by groups \(2\)"),
    ("conv2d-out-channels-not-divisible-by-groups", lambda: F.conv2d(X, t(5, 2, 3, 3), groups=2), ValueError,
     r"output channels \(5.*must be divisible by groups \(2\)"),
    ("Conv2d-channels-not-divisible-by-groups", lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"),
    ("conv2d-bias-shape", lambda: F.conv2d(X, W, t(5), groups=2), ValueError,
     r"bias has shape \(5,\), expected \(6,\)"),
    # ---- sizes, strides, padding
    ("conv2d-kernel-larger-than-padded-input", lambda: F.conv2d(X, t(6, 4, 8, 8), padding=1), ValueError,
     r"kernel 8x8 is larger than the padded input 7x7"),
    ("max_pool2d-kernel-larger-than-input", lambda: F.max_pool2d(X, 7), ValueError,
     r"kernel 7x7 is larger than the padded input 5x5"),
    ("conv2d-stride-0", lambda: F.conv2d(X, W, stride=0, groups=2), ValueError, r"stride must be >= 1, got \(0, 0\)"),
    ("conv2d-stride-negative", lambda: F.conv2d(X, W, stride=(1, -2), groups=2), ValueError,
     r"stride must be >= 1, got \(1, -2\)"),
    ("conv2d-stride-float", lambda: F.conv2d(X, W, stride=1.5, groups=2), TypeError,
     r"stride must be an int or a pair of ints, got 1.5"),
    ("max_pool2d-stride-0", lambda: F.max_pool2d(X, 3, 0), ValueError, r"stride must be >= 1, got \(0, 0\)"),
    ("Conv2d-stride-0", lambda: nn.Conv2d(4, 4, 3, stride=0), ValueError, r"stride must be >= 1"),
    ("conv2d-padding-negative", lambda: F.conv2d(X, W, padding=-1, groups=2), ValueError,
     r"padding must be >= 0, got \(-1, -1\)"),
    ("max_pool2d-padding-negative", lambda: F.max_pool2d(X, 3, 2, padding=-1), ValueError, r"padding must be >= 0"),
    ("max_pool2d-padding-over-half-kernel", lambda: F.max_pool2d(X, 3, 2, padding=2), ValueError,
     r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"),
    ("conv2d-groups-0", lambda: F.conv2d(X, W, groups=0), ValueError, r"groups must be >= 1, got 0"),
    ("local_response_norm-size-0", lambda: F.local_response_norm(X, 0), ValueError, r"size must be >= 1, got 0"),
    ("adaptive_avg_pool2d-size-0", lambda: F.adaptive_avg_pool2d(X, 0), ValueError, r"output_size must be >= 1"),
    # ---- targets
    ("cross_entropy-target-too-large", lambda: F.cross_entropy(t(2, 3), np.array([0, 3])), ValueError,
     r"class indices in \[0, 2\], got values from 0 to 3"),
    ("cross_entropy-target-negative", lambda: F.cross_entropy(t(2, 3), np.array([-1, 0])), ValueError,
     r"class indices in \[0, 2\], got values from -1 to 0"),
    ("cross_entropy-float-target", lambda: F.cross_entropy(t(2, 3), np.array([0.0, 1.0])), TypeError,
     r"target must hold integer class indices, got dtype float64"),
    ("cross_entropy-float-target-tensor", lambda: F.cross_entropy(t(2, 3), Tensor([0.0, 1.0])), TypeError,
     r"integer class indices, got dtype float32"),
    ("cross_entropy-target-shape", lambda: F.cross_entropy(t(2, 3), np.array([0, 1, 2])), ValueError,
     r"target must have shape \(2,\) to match logits \(2, 3\), got \(3,\)"),
    ("cross_entropy-reduction", lambda: F.cross_entropy(t(2, 3), np.array([0, 1]), "avg"), ValueError,
     r"reduction must be one of .*got 'avg'"),
    # ---- integer tensors where floats are needed
    ("conv2d-int-input", lambda: F.conv2d(t(1, 4, 5, 5, dtype=np.int64), W, groups=2), TypeError,
     r"input must be a floating-point tensor .*got int64"),
    ("conv2d-int-weight", lambda: F.conv2d(X, t(6, 2, 3, 3, dtype=np.int32), groups=2), TypeError,
     r"weight must be a floating-point tensor .*got int32"),
    ("linear-int-input", lambda: F.linear(t(2, 4, dtype=np.int64), t(3, 4)), TypeError, r"floating-point .*got int64"),
    ("relu-int", lambda: F.relu(t(3, dtype=np.int64)), TypeError, r"relu: input must be a floating-point tensor"),
    ("max_pool2d-int", lambda: F.max_pool2d(t(1, 1, 4, 4, dtype=np.int64), 2), TypeError, r"floating-point .*int64"),
    ("local_response_norm-int", lambda: F.local_response_norm(t(1, 2, 2, 2, dtype=np.int64), 3), TypeError,
     r"floating-point .*int64"),
    ("softmax-int", lambda: F.softmax(t(3, dtype=np.int64), 0), TypeError, r"floating-point .*int64"),
    ("cross_entropy-int-logits", lambda: F.cross_entropy(t(2, 3, dtype=np.int64), [0, 1]), TypeError,
     r"logits must be a floating-point tensor"),
    ("dropout-int", lambda: F.dropout(t(3, dtype=np.int64)), TypeError, r"floating-point .*int64"),
    ("requires-grad-on-int", lambda: Tensor(np.array([1, 2]), requires_grad=True), TypeError,
     r"only floating-point tensors can require gradients, got int64"),
    ("Parameter-int", lambda: nn.Parameter(np.array([1, 2]), requires_grad=False), TypeError,
     r"Parameter: data must be floating point, got int64"),
    ("conv2d-numpy-input", lambda: F.conv2d(np.zeros((1, 4, 5, 5)), W, groups=2), TypeError,
     r"input must be a minialex Tensor, got ndarray"),
    ("conv2d-mixed-dtypes", lambda: F.conv2d(X.double(), W, groups=2), TypeError,
     r"input is float64 but weight is float32"),
    # ---- shape mismatches
    ("linear-features-mismatch", lambda: F.linear(t(2, 5), t(3, 4)), ValueError,
     r"input has 5 features .*weight expects 4 \(weight shape \(3, 4\)\)"),
    ("linear-bias-shape", lambda: F.linear(t(2, 4), t(3, 4), t(4)), ValueError,
     r"bias has shape \(4,\), expected \(3,\)"),
    ("matmul-inner-mismatch", lambda: t(2, 3) @ t(4, 5), ValueError,
     r"shapes \(2, 3\) and \(4, 5\) do not match \(inner sizes 3 and 4\)"),
    ("matmul-vector-mismatch", lambda: t(3) @ t(4), ValueError, r"inner sizes 3 and 4"),
    ("matmul-batch-mismatch", lambda: t(2, 3, 4) @ t(3, 4, 5), ValueError,
     r"batch dimensions \(2,\) of \(2, 3, 4\) and \(3,\) of \(3, 4, 5\) cannot be broadcast"),
    ("add-broadcast-mismatch", lambda: t(2, 3) + t(4), ValueError,
     r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    ("mul-broadcast-mismatch", lambda: t(2, 3) * np.zeros(2), ValueError, r"mul: shapes \(2, 3\) and \(2,\) cannot"),
    ("sub-broadcast-mismatch", lambda: t(2, 3) - t(3, 2), ValueError, r"sub: shapes"),
    ("div-broadcast-mismatch", lambda: t(5) / t(4), ValueError, r"div: shapes \(5,\) and \(4,\)"),
    ("reshape-wrong-size", lambda: t(6).reshape(4, 2), ValueError,
     r"cannot reshape a tensor of shape \(6,\) \(6 elements\) into \(4, 2\)"),
    ("backward-grad-shape", lambda: (Tensor(np.ones(3), requires_grad=True) * 2.0).backward(np.ones(2)), ValueError,
     r"grad has shape \(2,\), expected \(3,\)"),
    # ---- dims
    ("sum-dim-out-of-range", lambda: t(2, 3).sum(2), ValueError, r"dim 2 is out of range for a tensor with 2 dim"),
    ("softmax-dim-out-of-range", lambda: F.softmax(t(2, 3), -3), ValueError, r"dim -3 is out of range"),
    ("permute-not-a-permutation", lambda: t(2, 3).permute(0, 0), ValueError, r"is not a permutation"),
    ("flatten-start-after-end", lambda: F.flatten(X, 3, 1), ValueError, r"start_dim 3 comes after end_dim 1"),
    # ---- dropout p
    ("dropout-p-above-1", lambda: F.dropout(X, 1.5), ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
    ("dropout-p-negative", lambda: F.dropout(X, -0.1), ValueError, r"in \[0, 1\], got -0.1"),
    ("Dropout-p-above-1", lambda: nn.Dropout(2), ValueError, r"Dropout: p must be a probability in \[0, 1\], got 2"),
    ("Dropout-p-string", lambda: nn.Dropout("0.5"), ValueError, r"probability in \[0, 1\], got '0.5'"),
    # ---- misc
    ("pow-tensor-exponent", lambda: t(2) ** t(2), TypeError, r"exponent must be a Python number, got Tensor"),
    ("item-of-many", lambda: t(2).item(), ValueError, r"one element, got shape \(2,\)"),
    ("unknown-device", lambda: Tensor(np.zeros(2), device="tpu"), ValueError, r"unknown device 'tpu': expected one of"),
    ("string-data", lambda: Tensor("abc"), TypeError, r"cannot make a tensor from str"),
    ("manual_seed-float", lambda: minialex.manual_seed(1.5), TypeError, r"manual_seed expects an int, got float"),
    ("Sequential-non-module", lambda: nn.Sequential(nn.ReLU(), 3), TypeError, r"argument 1 is a int, not a Module"),
    ("Linear-zero-features", lambda: nn.Linear(0, 3), ValueError, r"in_features must be >= 1, got 0"),
    ("lrn-alpha-string", lambda: F.local_response_norm(X, 3, alpha="1"), TypeError, r"alpha must be a number, got '1'"),
]


@pytest.mark.parametrize("fn,exc,pattern", [pytest.param(f, e, p, id=i) for i, f, e, p in CASES])
def test_bad_input_raises_a_clear_error(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()


# ----------------------------------------------------------------------------- state dicts
def test_load_state_dict_with_wrong_shapes_names_each_key():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 2))
    sd = net.state_dict()
    sd["0.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    sd["2.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"(?s)nothing was loaded.*0\.weight: expected shape \(4, 3, 3, 3\), "
                                         r"got \(4, 3, 5, 5\).*2\.bias: expected shape \(2,\), got \(3,\)"):
        net.load_state_dict(sd)


def test_load_state_dict_non_numeric_and_non_mapping():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"expected a mapping of name -> array, got list"):
        lin.load_state_dict([1, 2])
    with pytest.raises(ValueError, match=r"weight: expected a numeric array, got dtype <U1"):
        lin.load_state_dict({"weight": np.array([["a", "b"], ["c", "d"]]), "bias": np.zeros(2)})


def test_errors_print_nothing(capsys):
    for _, fn, exc, _ in CASES:
        with pytest.raises(exc):
            fn()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ----------------------------------------------------------------------------- gradcheck
def test_gradcheck_on_a_numpy_array_says_it_wants_tensors():
    with pytest.raises(TypeError, match=r"gradcheck: inputs must be minialex Tensors .*input 0 is a ndarray: "
                                        r"wrap it, minialex.tensor\(x\)"):
        minialex.gradcheck(lambda a: a * 2.0, [np.ones((2, 2))])
    with pytest.raises(ValueError, match="no floating-point tensor among the inputs"):
        minialex.gradcheck(lambda a: a * 2.0, [Tensor(np.ones(2, np.int64))])

"""PyTorch as an oracle: one call compares an op's forward and gradients with torch's on the same inputs
(after tinygrad's ``helper_test_op``).

    compare_with_torch(lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
                       lambda x, w: F.conv2d(x, w, padding=1), [x, w], device)

The inputs are float64 NumPy arrays; each framework gets its own leaf tensors of them (float64, so the
comparison is of the maths, not of rounding), runs its function, and back-propagates the same random
output gradient. The outputs and the gradient of every input must agree to ``rtol``/``atol``. Arguments
that are not differentiated (targets, sizes, a dim) are closed over by the two functions.

Where torch is not installed the calling test is skipped, saying so (``pytest.importorskip``).
"""
import numpy as np
import pytest

from conftest import assert_close, make, randn


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch to compare with it")


def compare_with_torch(torch_fn, our_fn, arrays, device="cpu", rtol=1e-10, atol=1e-12, seed=9):
    """Assert that our_fn and torch_fn give the same output and the same gradients for each of ``arrays``."""
    torch = torch_or_skip()
    ours = [make(a, device, requires_grad=True) for a in arrays]
    out = our_fn(*ours)
    upstream = randn(*out.shape, seed=seed)            # the same dL/dout for both
    out.backward(upstream)
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    expected = torch_fn(*theirs)
    expected.backward(torch.tensor(upstream, dtype=torch.float64))
    assert tuple(out.shape) == tuple(expected.shape), f"shape {out.shape}, torch's {tuple(expected.shape)}"
    assert_close(out, expected.detach().numpy(), rtol=rtol, atol=atol, msg="forward")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a.grad, b.grad.numpy(), rtol=rtol, atol=atol, msg=f"gradient of input {i}")

"""The CUDA path end to end: moving tensors and modules, SGD, device-independent randomness, the
kernels each op and the optimiser run, host syncs, and ``python -m minialex`` with ``--device cuda``.

Without a GPU these run on the CuPy stand-in (tests/fake_cupy: the .cu kernels on the CPU emulator);
with one, on the real CuPy. Checks that only the stand-in can make (which kernels were launched, how
many host syncs a step makes) are skipped on a real GPU.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import Tensor, backend, nn
from minialex.models import alexnet
from minialex.optim import SGD

from conftest import _CUDA_SKIP, FAKE_CUPY

pytestmark = pytest.mark.skipif(_CUDA_SKIP is not None, reason=f"no GPU: {_CUDA_SKIP}")
stand_in_only = pytest.mark.skipif(not FAKE_CUPY, reason="counts launches and syncs of the CuPy stand-in")
ROOT = Path(__file__).resolve().parents[1]


def launched(fn):
    """The kernels (names, in order) that ``fn()`` launched on the stand-in."""
    import cupy
    before = len(cupy._emulated.launches)
    fn()
    return cupy._emulated.launches[before:]


def host_syncs(fn):
    import cupy
    before = cupy.host_syncs
    fn()
    return cupy.host_syncs - before


def mini_net(seed=0):
    minialex.manual_seed(seed)
    return alexnet("mini", num_classes=10, in_channels=1, input_size=28)


# ----------------------------------------------------------------------------- moving data
def test_tensor_to_cuda_and_back_is_differentiable():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and backend.is_cupy_array(y.data)
    (y * y).sum().backward()
    assert x.grad.__class__ is np.ndarray
    np.testing.assert_array_equal(x.grad, 2 * np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(y.to("cpu").numpy(), x.numpy())


def test_a_cupy_array_made_before_minialex_chose_cuda_works(monkeypatch):
    """backend.xp_of used to return None for a CuPy array until cupy_module() had run once."""
    import cupy
    monkeypatch.setattr(backend, "_cupy", None)
    out = F.relu(Tensor(cupy.ones(3) * -1.0 + cupy.arange(3)))
    np.testing.assert_array_equal(out.numpy(), [0.0, 0.0, 1.0])


def test_module_to_cuda_and_state_dict_is_host_numpy():
    model = mini_net().to("cuda")
    assert all(p.device == "cuda" for p in model.parameters())
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    back = mini_net(seed=1)
    back.load_state_dict(state)
    for (name, a), (_, b) in zip(model.named_parameters(), back.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


# ----------------------------------------------------------------------------- randomness
def test_dropout_masks_are_the_same_on_cpu_and_cuda():
    x = np.random.default_rng(0).standard_normal((4, 50)).astype(np.float32) + 3.0
    outs = {}
    for device in ("cpu", "cuda"):
        minialex.manual_seed(7)
        outs[device] = F.dropout(Tensor(x, device=device), 0.5).numpy()
    np.testing.assert_array_equal(outs["cuda"], outs["cpu"])
    assert 0 < (outs["cpu"] == 0).sum() < x.size


def test_a_training_step_on_cuda_matches_the_cpu():
    """Same seed, same data, dropout on: the weights after a step agree to float32 round-off."""
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    y = np.array([1, 7])
    after = {}
    for device in ("cpu", "cuda"):
        model = mini_net().to(device)
        opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        minialex.manual_seed(3)
        for _ in range(1):
            loss = F.cross_entropy(model(Tensor(x, device=device)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        after[device] = model.state_dict()
    for name in after["cpu"]:
        a, b = after["cuda"][name], after["cpu"][name]
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * max(1.0, float(np.abs(b).max())), err_msg=name)


# ----------------------------------------------------------------------------- every conv version
@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("case", [
    dict(shape=(2, 4, 9, 9), w=(6, 2, 3, 3), stride=1, padding=1, groups=2),
    dict(shape=(1, 3, 15, 15), w=(4, 3, 5, 5), stride=4, padding=0, groups=1),   # conv1's stride
], ids=["3x3-groups2", "5x5-stride4"])
def test_conv2d_on_cuda_in_each_kernel_version(version, case, monkeypatch):
    """F.conv2d's float32 forward and both gradients through conv version 1 (im2col + GEMM), 2 and 3
    (implicit GEMM), against the CPU; the float64 gradcheck of the op is in test_ops.py."""
    from minialex.cuda import launch
    monkeypatch.setattr(launch, "default_conv_version", lambda g: version)
    rng = np.random.default_rng(version)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (case["shape"], case["w"], case["w"][:1]))
    kw = dict(stride=case["stride"], padding=case["padding"], groups=case["groups"])
    from conftest import device_grads
    fn = lambda x, w, b: F.conv2d(x, w, b, **kw)                                  # noqa: E731
    inputs = [Tensor(x), Tensor(w), Tensor(b)]
    kernels = launched(lambda: device_grads(fn, inputs, "cuda", np.float32)) if FAKE_CUPY else None
    for got, want in zip(device_grads(fn, inputs, "cuda", np.float32), device_grads(fn, inputs, "cpu", np.float64)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    np.testing.assert_allclose(fn(*[t.to("cuda") for t in inputs]).numpy(),
                               fn(*[t.double() for t in inputs]).numpy(), rtol=1e-4, atol=1e-4)
    if kernels is not None:
        suffix = "_v1" if version == 1 else f"_v{version}"
        wanted = ({"im2col_v1", "col2im_v1"} if version == 1 else
                  {f"conv2d_fwd{suffix}", f"conv2d_bwd_data{suffix}", f"conv2d_bwd_weight{suffix}"})
        assert wanted <= set(kernels), kernels


@pytest.mark.parametrize("size", [3, 5])
def test_lrn_on_cuda_forward_and_backward_kernels(size):
    from conftest import check_grads, randn
    x = Tensor(randn(2, 7, 3, 4, seed=size))
    check_grads(lambda a: F.local_response_norm(a, size, alpha=1e-2, beta=0.75, k=2.0), [x], device="cuda")
    if FAKE_CUPY:
        ran = launched(lambda: device_grads_lrn(x, size))
        assert {"lrn_forward_v1", "lrn_backward_v1"} <= set(ran), ran


def device_grads_lrn(x, size):
    from conftest import device_grads
    return device_grads(lambda a: F.local_response_norm(a, size, alpha=1e-2, beta=0.75, k=2.0), [x], "cuda",
                        np.float32)


# ----------------------------------------------------------------------------- SGD on cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_on_cuda_matches_the_cpu(dtype):
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal((3, 5, 7)).astype(dtype)
    result = {}
    for device in ("cpu", "cuda"):
        p = nn.Parameter(Tensor(w0.copy(), device=device))
        opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
        for g in grads:
            p.grad = Tensor(g, device=device).data
            opt.step()
        result[device] = (p.numpy(), backend.to_device(opt.state_dict()["velocity"][0], "cpu"))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for a, b in zip(result["cuda"], result["cpu"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- kernels in use
@stand_in_only
def test_each_float32_op_and_the_optimiser_run_our_kernels():
    x = Tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32), device="cuda",
               requires_grad=True)
    assert launched(lambda: F.relu(x)) == ["bias_act_forward"]
    assert launched(lambda: F.dropout(x, 0.5)) == ["dropout_apply"]
    loss = F.cross_entropy(x, np.array([0, 1, 2, 3]))
    assert "softmax_xent_forward" in launched(lambda: F.cross_entropy(x, np.array([0, 1, 2, 3])))
    assert "softmax_xent_backward" in launched(loss.backward)
    p = nn.Parameter(Tensor(np.ones((3, 3), np.float32), device="cuda"))
    p.grad = p.data * 0.5
    assert launched(SGD([p], lr=0.1).step) == ["sgd_momentum"]
    y = F.relu(x)
    assert launched(lambda: y.backward(Tensor(np.ones((4, 6), np.float32), device="cuda")))[0] == "bias_act_backward_nc"


@stand_in_only
def test_a_training_step_makes_one_host_sync():
    """The loss read for the NaN check; cross_entropy's target range check stays on the host."""
    from minialex.train import TrainConfig, Trainer
    trainer = Trainer(TrainConfig(device="cuda", batch_size=2, max_batches=1, prefetch=0, out="/nonexistent"),
                      progress=False)
    x, y, _ = next(iter(trainer.train_loader))                 # _: the samples' indices
    trainer.train_step(x, y)                                   # the first step compiles; count the second
    assert host_syncs(lambda: trainer.train_step(x, y)) == 1


def test_a_fresh_leaf_gradient_is_kept_not_copied_on_cuda():
    leaf = Tensor(np.ones(4, np.float32), device="cuda", requires_grad=True)
    fresh = {}

    def backward(g):
        fresh["g"] = g * 2.0
        return (fresh["g"],)
    Tensor.from_op(leaf.data * 2.0, (leaf,), backward, "double").sum().backward()
    assert leaf.grad is fresh["g"]


# ----------------------------------------------------------------------------- the command line
def cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "minialex", *args], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def test_train_resume_eval_and_predict_on_cuda(tmp_path):
    """A few batches of the mini net on cuda; a checkpoint resumed to the very weights of an
    uninterrupted run; eval and predict on cuda agree with the CPU."""
    quick = ("--device", "cuda", "--batch-size", "4", "--max-batches", "1", "--no-progress",
             "--schedule", "step")      # step: a 1-epoch run resumed to 2 is a 2-epoch run (a cosine would restart)
    cli("train", *quick, "--epochs", "2", "--out", str(tmp_path / "straight"))
    cli("train", *quick, "--epochs", "1", "--out", str(tmp_path / "split"))
    cli("train", "--resume", str(tmp_path / "split"), "--epochs", "2", "--no-progress")
    straight = np.load(tmp_path / "straight" / "checkpoint.npz")
    resumed = np.load(tmp_path / "split" / "checkpoint.npz")
    weights = [k for k in straight.files if k.startswith("model/")]
    assert weights
    for k in weights:
        np.testing.assert_array_equal(straight[k], resumed[k], err_msg=k)
    assert json.loads((tmp_path / "straight" / "config.json").read_text())["device"] == "cuda"

    evals = {d: cli("eval", "--checkpoint", str(tmp_path / "straight"), "--device", d, "--batch-size", "4",
                    "--max-batches", "2") for d in ("cpu", "cuda")}
    assert "8 images" in evals["cuda"] and evals["cuda"] == evals["cpu"]

    from minialex.data import load_digits
    from minialex.train.plots import write_png
    images, _ = load_digits("test")
    write_png(tmp_path / "seven.png", images[700, 0])
    predicted = {d: cli("predict", "--checkpoint", str(tmp_path / "straight"), "--device", d,
                        str(tmp_path / "seven.png")) for d in ("cpu", "cuda")}
    top = {d: predicted[d].split()[1] for d in predicted}
    assert top["cuda"] == top["cpu"]

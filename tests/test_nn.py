"""nn: parameter discovery and names, Sequential, state dicts, train/eval, zero_grad,
dtype moves, default initialisation, repr, and a small AlexNet-shaped net under gradcheck."""
import math

import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import Tensor, nn

from conftest import assert_close, make, randn


class TwoLayer(nn.Module):
    def __init__(self):
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 2, bias=False)
        self.scale = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        y = self.act(self.conv1(x)).mean(dim=(2, 3))  # (N, 4)
        return self.fc(y) * self.scale


def small_net():
    """conv -> relu -> lrn -> pool -> flatten -> linear: x (N, 3, 7, 7) -> (N, 5)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.LocalResponseNorm(3, alpha=1.0, k=2.0),
                         nn.MaxPool2d(3, 2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5))


# ============================================================================= discovery and names
def test_named_parameters_order_and_names():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv1.weight", "conv1.bias", "fc.weight", "scale"]  # definition order, dotted
    assert [p.shape for p in m.parameters()] == [(4, 3, 3, 3), (4,), (2, 4), (1,)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert [n for n, _ in m.named_children()] == ["conv1", "act", "fc"]
    assert [n for n, _ in m.named_modules()] == ["", "conv1", "act", "fc"]


def test_sequential_children_are_named_by_position():
    net = small_net()
    assert [n for n, _ in net.named_children()] == ["0", "1", "2", "3", "4", "5"]
    assert len(net) == 6 and isinstance(net[0], nn.Conv2d) and isinstance(net[-1], nn.Linear)
    assert [type(m).__name__ for m in net] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d", "Flatten",
                                                "Linear"]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "5.weight", "5.bias"]


def test_nested_names_line_up_like_pytorch():
    class Net(nn.Module):
        def __init__(self):
            self.features = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1))
            self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(8, 3))
    assert list(Net().state_dict()) == ["features.0.weight", "features.0.bias", "features.2.weight",
                                        "features.2.bias", "classifier.1.weight", "classifier.1.bias"]


def test_forward_runs_and_shapes(device):
    net = small_net().to(device) if device != "cpu" else small_net()
    y = net(make(randn(2, 3, 7, 7), device, dtype=np.float32))
    assert y.shape == (2, 5) and y.dtype == np.float32 and y.device == device


# ============================================================================= state dicts
def test_state_dict_round_trip():
    minialex.manual_seed(1)
    a = small_net()
    minialex.manual_seed(2)
    b = small_net()
    x = Tensor(randn(1, 3, 7, 7).astype(np.float32))
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    sd = a.state_dict()
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert_close(b(x), a(x).numpy(), rtol=0, atol=0)
    sd["0.weight"][...] = 0  # a copy: changing it leaves the modules alone
    assert np.abs(a[0].weight.numpy()).max() > 0 and np.abs(b[0].weight.numpy()).max() > 0


def test_state_dict_values_are_host_numpy_copies():
    net = small_net()
    sd = net.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["5.bias"] is not net[5].bias.data


def _snapshot(m):
    return {k: v.copy() for k, v in m.state_dict().items()}


def _assert_unchanged(m, before):
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} was changed by a failed load")


def test_load_state_dict_reports_missing_and_unexpected_and_loads_nothing():
    net = small_net()
    before = _snapshot(net)
    sd = {k: np.zeros_like(v) for k, v in before.items()}
    del sd["5.bias"]
    sd["6.weight"] = np.zeros(3)
    with pytest.raises(ValueError) as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert "missing keys: 5.bias" in msg and "unexpected keys: 6.weight" in msg and "nothing was loaded" in msg
    _assert_unchanged(net, before)  # even the keys that did match were not loaded


def test_load_state_dict_reports_mis_shaped_keys_and_loads_nothing():
    net = small_net()
    before = _snapshot(net)
    sd = {k: np.zeros_like(v) for k, v in before.items()}
    sd["0.weight"] = np.zeros((4, 3, 5, 5))
    with pytest.raises(ValueError, match=r"0\.weight: expected shape \(4, 3, 3, 3\), got \(4, 3, 5, 5\)"):
        net.load_state_dict(sd)
    _assert_unchanged(net, before)
    with pytest.raises(ValueError, match="expected shape"):  # strict=False does not forgive shapes
        net.load_state_dict(sd, strict=False)
    _assert_unchanged(net, before)


def test_load_state_dict_not_strict_loads_what_matches():
    net = small_net()
    sd = {"0.weight": np.full((4, 3, 3, 3), 0.5), "extra": np.ones(2)}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["0.bias", "5.weight", "5.bias"] and unexpected == ["extra"]
    assert net[0].weight.dtype == np.float32  # cast to the parameter's dtype
    assert_close(net[0].weight, np.full((4, 3, 3, 3), 0.5), rtol=0, atol=0)


def test_load_state_dict_accepts_tensors():
    a, b = small_net(), small_net()
    b.load_state_dict({k: Tensor(v) for k, v in a.state_dict().items()})
    for (k, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=k)


def test_load_state_dict_from_torch_module():
    torch = pytest.importorskip("torch")
    tnet = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.LocalResponseNorm(3, alpha=1.0, k=2.0), torch.nn.MaxPool2d(3, 2),
                               torch.nn.Flatten(), torch.nn.Linear(36, 5))
    net = small_net()
    net.load_state_dict(tnet.state_dict())
    x = randn(2, 3, 7, 7).astype(np.float32)
    with torch.no_grad():
        expected = tnet(torch.tensor(x)).numpy()
    assert_close(net(Tensor(x)), expected, rtol=1e-4, atol=1e-5)


# ============================================================================= modes, grads, dtypes
def test_train_eval_propagate_to_children_and_dropout_obeys(device):
    net = nn.Sequential(nn.Linear(50, 50), nn.Sequential(nn.ReLU(), nn.Dropout(0.5)))
    if device != "cpu":
        net.to(device)
    assert all(m.training for m in net.modules())
    x = make(np.abs(randn(8, 50)) + 1.0, device, dtype=np.float32)
    net.eval()
    assert not any(m.training for m in net.modules())
    y_eval = net(x).numpy()
    np.testing.assert_array_equal(y_eval, net(x).numpy())  # deterministic
    assert net.train() is net
    assert all(m.training for m in net.modules())
    y_train = net(x).numpy()
    dropped = (y_train == 0) & (y_eval != 0)
    assert dropped.any()
    kept = y_train != 0
    np.testing.assert_allclose(y_train[kept], 2.0 * y_eval[kept], rtol=1e-5)  # inverted: kept x 1/(1-p)


def test_zero_grad():
    net = small_net()
    loss = F.cross_entropy(net(Tensor(randn(2, 3, 7, 7).astype(np.float32))), np.array([0, 4]))
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_to_float64():
    net = small_net()
    before = _snapshot(net)
    assert net.to(np.float64) is net
    assert all(p.dtype == np.float64 for p in net.parameters())
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k].astype(np.float64))
    y = net(Tensor(randn(1, 3, 7, 7)))
    assert y.dtype == np.float64
    assert net.float() is net and all(p.dtype == np.float32 for p in net.parameters())


# ============================================================================= init and repr
@pytest.mark.parametrize("make_layer,fan_in", [
    pytest.param(lambda: nn.Conv2d(6, 32, 5), 6 * 25, id="conv5x5"),
    pytest.param(lambda: nn.Conv2d(6, 32, (3, 2), groups=2), 3 * 6, id="conv-groups2-fan-in-per-group"),
    pytest.param(lambda: nn.Linear(200, 100), 200, id="linear"),
])
def test_default_init_bounds(make_layer, fan_in):
    layer = make_layer()
    bound = 1.0 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        v = p.numpy()
        assert p.dtype == np.float32
        assert np.abs(v).max() <= bound
        if v.size >= 100:  # uniform over the whole interval, not a narrower one
            assert np.abs(v).max() > 0.9 * bound
            assert abs(v.mean()) < 0.2 * bound


def test_init_is_reproducible_under_manual_seed():
    minialex.manual_seed(5)
    a = nn.Linear(10, 10).weight.numpy()
    minialex.manual_seed(5)
    b = nn.Linear(10, 10).weight.numpy()
    np.testing.assert_array_equal(a, b)


def test_repr():
    text = repr(small_net())
    assert text.startswith("Sequential(\n")
    assert "(0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text
    assert "(2): LocalResponseNorm(3, alpha=1.0, beta=0.75, k=2.0)" in text
    assert "(3): MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=False)" in text
    assert "(5): Linear(in_features=36, out_features=5, bias=True)" in text
    assert "groups=2" in repr(nn.Conv2d(4, 4, 3, groups=2))
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"


# ============================================================================= gradcheck of a whole net
def functional_call(module, params, *args):
    """Run ``module`` with ``params`` (in named_parameters order) standing in for its own."""
    named = list(module.named_parameters())
    owners = []
    for (name, _), value in zip(named, params):
        *path, attr = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        owners.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)
    try:
        return module(*args)
    finally:
        for owner, attr, old in owners:
            setattr(owner, attr, old)


def test_small_net_gradcheck_random_direction():
    net = small_net().to(np.float64)
    target = np.array([1, 3])
    x = Tensor(randn(2, 3, 7, 7))

    def loss(x, *params):
        return F.cross_entropy(functional_call(net, params, x), target)
    result = minialex.gradcheck(loss, [x] + net.parameters(), mode="random", n_directions=6, rtol=1e-6, atol=1e-8)
    assert result.ok and result.mode == "random"


def test_small_net_parameter_gradients_match_torch():
    torch = pytest.importorskip("torch")
    net = small_net().to(np.float64)
    tnet = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.LocalResponseNorm(3, alpha=1.0, k=2.0), torch.nn.MaxPool2d(3, 2),
                               torch.nn.Flatten(), torch.nn.Linear(36, 5)).double()
    tnet.load_state_dict({k: torch.tensor(v) for k, v in net.state_dict().items()})
    x, target = randn(2, 3, 7, 7), np.array([1, 3])
    F.cross_entropy(net(Tensor(x)), target).backward()
    torch.nn.functional.cross_entropy(tnet(torch.tensor(x)), torch.tensor(target)).backward()
    for (name, p), (tname, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert name == tname
        assert_close(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12, msg=name)

"""SGD against the paper's formula and torch.optim.SGD; parameter groups; state dicts; schedules."""
import math

import numpy as np
import pytest

from minialex import nn
from minialex.models import alexnet
from minialex.optim import SGD, ConstantLR, CosineAnnealingLR, ReduceLROnPlateau, StepLR, caffe_param_groups


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(shape)) for shape in ((3, 4), (4,))]   # float64


def grads_for(params, step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(p.shape) for p in params]


def test_sgd_is_the_papers_update():
    lr, m, wd = 0.01, 0.9, 5e-4
    params = make_params()
    opt = SGD(params, lr, momentum=m, weight_decay=wd)
    w = [p.data.copy() for p in params]
    v = [np.zeros_like(x) for x in w]
    for step in range(5):
        for p, g in zip(params, grads_for(params, step)):
            p.grad = g
        opt.step()
        for i, g in enumerate(grads_for(params, step)):
            v[i] = m * v[i] - wd * lr * w[i] - lr * g        # v <- 0.9 v - 0.0005 lr w - lr dL/dw
            w[i] = w[i] + v[i]                                 # w <- w + v
            np.testing.assert_allclose(params[i].data, w[i], rtol=1e-13, atol=1e-15)
    assert params[0].dtype == np.float64


def test_sgd_float32_stays_float32():
    p = nn.Parameter(np.ones((2, 2), np.float32))
    opt = SGD([p], 0.1)
    p.grad = np.full((2, 2), 0.5, np.float32)
    opt.step()
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.data, 1 - 0.1 * 0.5 - 0.1 * 5e-4, rtol=1e-6)


def test_sgd_matches_torch_with_constant_lr():
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = SGD(params, 0.05, momentum=0.9, weight_decay=5e-4)
    topt = torch.optim.SGD(tparams, lr=0.05, momentum=0.9, weight_decay=5e-4)
    for step in range(6):
        for p, tp, g in zip(params, tparams, grads_for(params, step)):
            p.grad = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_param_without_grad_is_left_alone_and_zero_grad():
    a, b = make_params()
    opt = SGD([a, b], 0.1)
    before = b.data.copy()
    a.grad = np.ones(a.shape)
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_caffe_groups_bias_double_lr_no_decay():
    m = alexnet("mini", 10, widths=(4, 4, 4, 4, 4), hidden=8)
    groups = caffe_param_groups(m, lr=0.01, weight_decay=5e-4)
    opt = SGD(groups, 0.01)
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in opt.param_groups] == \
        [("weights", 0.01, 5e-4), ("biases", 0.02, 0.0)]
    bias = m.layer("fc6").bias
    bias.data = np.ones_like(bias.data)
    bias.grad = np.zeros_like(bias.data)
    opt.step()
    np.testing.assert_array_equal(bias.data, 1.0)            # no decay on biases, zero gradient: no change
    bias.grad = np.ones_like(bias.data)
    opt.step()
    np.testing.assert_allclose(bias.data, 1.0 - 0.02, rtol=1e-6)


def test_state_dict_round_trip_continues_identically():
    a_params, b_params = make_params(), make_params()
    a = SGD(a_params, 0.01)
    for p, g in zip(a_params, grads_for(a_params, 0)):
        p.grad = g
    a.step()
    b = SGD(b_params, 0.5, momentum=0.5)           # other hyper-parameters: the state overrides them
    for p, q in zip(b_params, a_params):
        p.data = q.data.copy()
    state = a.state_dict()
    assert sorted(state["velocity"]) == [0, 1] and state["param_groups"][0]["params"] == [0, 1]
    b.load_state_dict(state)
    for opt, params in ((a, a_params), (b, b_params)):
        for p, g in zip(params, grads_for(params, 1)):
            p.grad = g
        opt.step()
    for p, q in zip(a_params, b_params):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_rejects_a_mismatch():
    opt = SGD(make_params(), 0.01)
    other = SGD([nn.Parameter(np.zeros((5, 5)))], 0.01)
    other.velocity[id(other.param_groups[0]["params"][0])] = np.zeros((5, 5))
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict(other.state_dict())


@pytest.mark.parametrize("kwargs,match", [({"lr": -1.0}, "lr"), ({"lr": 0.1, "momentum": 1.0}, "momentum"),
                                          ({"lr": 0.1, "weight_decay": float("nan")}, "weight_decay")])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD(make_params(), **kwargs)


def test_empty_params():
    with pytest.raises(ValueError, match="empty"):
        SGD([], 0.1)


# ----------------------------------------------------------------------------- schedules

def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def test_step_lr_keeps_group_ratios():
    a, b = make_params()
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.2}], 0.1)
    sched = StepLR(opt, step_size=2, gamma=0.1)
    seen = []
    for _ in range(5):
        seen.append(lrs(opt))
        sched.step()
    np.testing.assert_allclose(seen, [[0.1, 0.2], [0.1, 0.2], [0.01, 0.02], [0.01, 0.02], [0.001, 0.002]])


def test_plateau_divides_by_ten_when_the_error_stops_improving_three_times_at_most():
    opt = SGD(make_params(), 0.01)
    sched = ReduceLROnPlateau(opt, factor=0.1, patience=0)
    history = []
    for err in [0.5, 0.4, 0.4, 0.3, 0.35, 0.2, 0.2, 0.2, 0.2]:
        sched.step(err)
        history.append(lrs(opt)[0])
    np.testing.assert_allclose(history, [0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5])
    assert sched.reductions == 3


def test_plateau_patience_and_state_round_trip():
    opt = SGD(make_params(), 1.0)
    sched = ReduceLROnPlateau(opt, patience=2)
    for err in [0.5, 0.6, 0.6]:
        sched.step(err)
    assert lrs(opt) == [1.0]                      # two bad epochs: still patient
    state = sched.state_dict()
    opt2 = SGD(make_params(), 1.0)
    sched2 = ReduceLROnPlateau(opt2, patience=2)
    sched2.load_state_dict(state)
    for s, o in ((sched, opt), (sched2, opt2)):
        s.step(0.7)
        assert lrs(o) == [pytest.approx(0.1)]


def test_constant_lr():
    opt = SGD(make_params(), 0.3)
    sched = ConstantLR(opt)
    sched.step(0.9)
    assert lrs(opt) == [0.3]


def test_cosine_lr_is_the_closed_form_keeps_group_ratios_and_stays_at_zero_past_t_max():
    a, b = make_params()
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.2}], 0.1)
    sched = CosineAnnealingLR(opt, T_max=4)
    seen = []
    for _ in range(6):
        seen.append(lrs(opt))
        sched.step()
    factors = [(1 + math.cos(math.pi * min(t, 4) / 4)) / 2 for t in range(6)]
    np.testing.assert_allclose(seen, [[0.1 * f, 0.2 * f] for f in factors], rtol=1e-12, atol=1e-15)
    assert seen[4] == [0.0, 0.0] and seen[5] == [0.0, 0.0]
    state = sched.state_dict()
    assert state == {"base_lrs": [0.1, 0.2], "T_max": 4, "epochs_done": 6, "scale": 0.0}
    with pytest.raises(ValueError, match="T_max must be a positive int"):
        CosineAnnealingLR(opt, 0)


def test_cosine_lr_matches_torch():
    torch = pytest.importorskip("torch")
    w = torch.zeros(3, requires_grad=True)
    topt = torch.optim.SGD([w], lr=0.01)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=8)
    opt = SGD(make_params(), 0.01)
    sched = CosineAnnealingLR(opt, T_max=8)
    for _ in range(8):
        assert lrs(opt)[0] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        topt.step()
        tsched.step()
        sched.step()


@pytest.mark.parametrize("key,value", [("T_max", "4"), ("T_max", 0), ("epochs_done", -1), ("epochs_done", True),
                                       ("scale", float("nan")), ("base_lrs", ["0.1"])])
def test_a_hostile_schedule_state_is_refused_before_anything_is_set(key, value):
    opt = SGD(make_params(), 0.1)
    sched = CosineAnnealingLR(opt, T_max=4)
    sched.step()
    state = dict(sched.state_dict(), **{key: value})
    with pytest.raises(ValueError, match=f"{key} = .* does not fit"):
        sched.load_state_dict(state)
    assert sched.state_dict()["T_max"] == 4 and sched.epochs_done == 1
    fresh = CosineAnnealingLR(SGD(make_params(), 0.1), T_max=9)
    fresh.load_state_dict(sched.state_dict())                    # a real state still loads
    assert (fresh.T_max, fresh.epochs_done) == (4, 1)

"""AlexNet variants: parameter counts, layer order, LRN settings, initialisation, summary numbers,
the paper net forward+backward at 227x227, the torchvision layout against PyTorch, and a tiny overfit."""
import numpy as np
import pytest

import minialex
import minialex.data
import minialex.functional as F
from minialex.models import alexnet, from_config, initialize
from minialex.optim import SGD
from minialex.summary import format_summary, summary
from minialex.blas_threads import blas_threads


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: steady timings when other work shares the cores (see minialex/blas_threads.py)."""
    with blas_threads(1):
        yield


# The big nets are built with init="default" (what their layers draw anyway): re-drawing 61M weights
# takes seconds. The init schemes are checked on a mini net, which has the same eight named layers.
@pytest.fixture(scope="module")
def paper():
    minialex.manual_seed(0)
    return alexnet("paper", init="default")


@pytest.fixture(scope="module")
def ungrouped():
    return alexnet("paper", grouped=False, init="default")


@pytest.fixture(scope="module")
def torchvision_net():
    return alexnet("torchvision")


@pytest.fixture
def mini():
    minialex.manual_seed(0)
    return alexnet("mini", 10, widths=(64, 64, 64, 64, 64), hidden=2048)


def count(model):
    return sum(p.numel() for p in model.parameters())


def kinds(seq):
    return [type(m).__name__ for m in seq]


# ----------------------------------------------------------------------------- structure and counts

def test_paper_parameter_count_and_layers(paper):
    assert count(paper) == 60_965_224
    assert kinds(paper.features) == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d",
                                     "Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d",
                                     "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    assert kinds(paper.classifier) == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [paper.layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    assert paper.layer("conv2").weight.shape == (256, 48, 5, 5)
    for pool in (paper.features[3], paper.features[7], paper.features[14]):
        assert (pool.kernel_size, pool.stride) == (3, 2)          # overlapping pooling
    lrn = paper.features[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 5e-4, 0.75, 2.0)   # paper alpha 1e-4 x n
    assert paper.classifier[2].p == 0.5 and paper.classifier[5].p == 0.5


def test_ungrouped_caffe_torchvision_counts(ungrouped, torchvision_net):
    assert count(ungrouped) == 62_378_344
    assert ungrouped.layer("conv2").weight.shape == (256, 96, 5, 5)
    caffe = alexnet("caffe", init="default")
    assert count(caffe) == 60_965_224
    lrn = caffe.features[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 1.0)
    assert caffe.features[3].ceil_mode
    assert count(torchvision_net) == 61_100_840


def test_default_init_per_variant():
    assert alexnet("mini", 10).config["init"] == "he"


def test_paper_initialisation(mini):
    initialize(mini, "paper")
    for name, bias in (("conv1", 0), ("conv2", 1), ("conv3", 0), ("conv4", 1), ("conv5", 1),
                       ("fc6", 1), ("fc7", 1), ("fc8", 0)):
        np.testing.assert_array_equal(mini.layer(name).bias.data, bias, err_msg=name)
    w = mini.layer("fc7").weight.data                               # 2048 x 2048 samples
    assert abs(w.mean()) < 1e-4 and 0.0099 < w.std() < 0.0101


def test_caffe_initialisation(mini):
    initialize(mini, "caffe")
    for name, bias in (("conv1", 0), ("conv2", 0.1), ("conv3", 0), ("conv4", 0.1), ("conv5", 0.1),
                       ("fc6", 0.1), ("fc7", 0.1), ("fc8", 0)):
        np.testing.assert_array_equal(mini.layer(name).bias.data, np.float32(bias), err_msg=name)
    assert 0.00495 < mini.layer("fc7").weight.data.std() < 0.00505  # fc6/fc7: std 0.005
    assert 0.0099 < mini.layer("conv4").weight.data.std() < 0.0101   # the rest: 0.01


def test_he_init_keeps_fc8_small():
    m = alexnet("mini", 10, in_channels=1, input_size=28)
    w = m.layer("conv3").weight
    assert abs(w.data.std() - np.sqrt(2.0 / (64 * 9))) < 0.01
    assert m.layer("fc8").weight.data.std() < 0.011


def test_torchvision_state_dict_keys_and_shapes(torchvision_net):
    sd = torchvision_net.state_dict()
    expected = {
        "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
        "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
        "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
        "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
        "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
        "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
        "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
        "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
    }
    assert list(sd) == list(expected)
    assert {k: v.shape for k, v in sd.items()} == expected


def test_torchvision_logits_match_pytorch(torchvision_net):
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(0)
    # torchvision.models.alexnet, written out from its documented layout (torchvision is not needed)
    features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(),
        tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
        tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    classifier = tnn.Sequential(
        tnn.Dropout(0.5), tnn.Linear(9216, 4096), tnn.ReLU(),
        tnn.Dropout(0.5), tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, 1000))
    tmodel = tnn.Module()
    tmodel.features, tmodel.avgpool, tmodel.classifier = features, tnn.AdaptiveAvgPool2d(6), classifier
    tmodel.eval()
    state = {k: v.detach().numpy() for k, v in tmodel.state_dict().items()}   # "converted to NumPy"

    ours = torchvision_net
    ours.load_state_dict(state)
    ours.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        t = tmodel.classifier(torch.flatten(tmodel.avgpool(tmodel.features(torch.from_numpy(x))), 1)).numpy()
    with minialex.no_grad():
        y = ours(minialex.tensor(x)).numpy()
    np.testing.assert_allclose(y, t, rtol=1e-3, atol=1e-4)                  # FP32 vs FP32 (CPU, no TF32)
    assert (y.argmax(1) == t.argmax(1)).all()
    # and back: our state_dict loads into the torch model by name
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


# ----------------------------------------------------------------------------- summary

def test_summary_matches_reference(paper):
    rows = summary(paper)
    by_paper = {r["paper"]: r for r in rows if r["paper"]}
    expected = {  # docs/alexnet.md: params, MACs per image
        "conv1": (34_944, 105_415_200), "conv2": (307_456, 223_948_800), "conv3": (885_120, 149_520_384),
        "conv4": (663_936, 112_140_288), "conv5": (442_624, 74_760_192), "fc6": (37_752_832, 37_748_736),
        "fc7": (16_781_312, 16_777_216), "fc8": (4_097_000, 4_096_000)}
    assert {k: (r["params"], r["macs"]) for k, r in by_paper.items()} == expected
    assert by_paper["conv1"]["output"] == (96, 55, 55)
    assert [r["output"] for r in rows if r["layer"] == "MaxPool2d"] == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    text = format_summary(rows)
    assert "60,965,224" in text and "724,406,816" in text and "724.4 M" in text


def test_summary_ungrouped_macs(ungrouped):
    rows = summary(ungrouped)
    assert abs(sum(r["macs"] for r in rows) - 1.135e9) < 1e6


# ----------------------------------------------------------------------------- running the nets

def test_paper_forward_backward_227(paper):
    paper.train()
    x = minialex.tensor(np.random.default_rng(1).standard_normal((2, 3, 227, 227)).astype(np.float32))
    loss = F.cross_entropy(paper(x), np.array([3, 999]))
    assert loss.shape == () and np.isfinite(loss.item())
    loss.backward()
    for name, p in paper.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    assert np.abs(paper.layer("conv1").weight.grad).sum() > 0
    paper.zero_grad()


@pytest.mark.parametrize("channels,size,flat", [(1, 28, 64 * 2 * 2), (3, 32, 64 * 3 * 3)])
def test_mini_shapes(channels, size, flat):
    m = alexnet("mini", 10, in_channels=channels, input_size=size)
    assert m.layer("fc6").in_features == flat
    kinds_ = set(kinds(m.features)) | set(kinds(m.classifier))
    assert {"Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d", "Dropout", "Linear"} <= kinds_
    y = m(minialex.tensor(np.zeros((3, channels, size, size), np.float32)))
    assert y.shape == (3, 10)


def test_mini_overfits_a_tiny_batch():
    minialex.manual_seed(0)
    images, labels = minialex.data.load_digits("train")
    pick = np.arange(0, 4000, 250)                                  # 16 digits, every class
    x = minialex.tensor((images[pick].astype(np.float32) / 255 - 0.13) / 0.31)
    y = labels[pick]
    m = alexnet("mini", 10, in_channels=1, input_size=28, dropout=0.0)
    opt = SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(m(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0 and loss.item() < 0.05, (first, loss.item())


def test_from_config_rebuilds_the_same_architecture():
    m = alexnet("mini", 7, in_channels=3, input_size=32, grouped=False, widths=(8, 8, 8, 8, 8), hidden=16)
    again = from_config(m.config)
    assert m.config == again.config
    again.load_state_dict(m.state_dict())


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown AlexNet variant 'alexnet'"):
        alexnet("alexnet")
    with pytest.raises(ValueError, match="num_classes"):
        alexnet("mini", 0)
    with pytest.raises(ValueError, match="too small"):
        alexnet("mini", 10, input_size=8)
    with pytest.raises(ValueError, match="227x227"):
        alexnet("paper", input_size=224)
    with pytest.raises(ValueError, match="unknown init"):
        alexnet("mini", init="xavier")

"""minialex's AlexNets written in PyTorch, layer for layer, for the benchmarks (PyTorch is optional:
``import torch`` happens inside the functions)."""


def torch_paper_alexnet():
    """The paper net in PyTorch, layer for layer the same as minialex.models.alexnet("paper")."""
    import torch
    nn = torch.nn
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, 1, 2, groups=2), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, 1, 1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, 1, 1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2))
    classifier = nn.Sequential(
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))
    return nn.Sequential(features, nn.Flatten(), classifier)


def torch_mini_alexnet(model_config):
    """The "mini" net in PyTorch from a minialex model's ``config`` dict (``model.config``): the same
    layers, widths, groups, LRN and dropout as ``minialex.models.alexnet("mini", ...)`` builds."""
    import torch
    from minialex.shapes import conv_output_size, pool_output_size
    nn = torch.nn
    c1, c2, c3, c4, c5 = model_config["widths"]
    hidden, p = model_config["hidden"], model_config["dropout"]
    g = 2 if model_config["grouped"] else 1
    size = model_config["input_size"]
    for _ in range(2):                                     # conv1/conv2 keep the size, pool1/pool2 halve it
        size = pool_output_size(conv_output_size(size, 5, 1, 2), 3, 2, 0, False)
    size = pool_output_size(size, 3, 2, 0, False)          # conv3..5 keep it; pool5
    lrn = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)       # minialex.models.alexnet.PAPER_LRN
    features = nn.Sequential(
        nn.Conv2d(model_config["in_channels"], c1, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(**lrn),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, padding=2, groups=g), nn.ReLU(), nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c3, c4, 3, padding=1, groups=g), nn.ReLU(),
        nn.Conv2d(c4, c5, 3, padding=1, groups=g), nn.ReLU(), nn.MaxPool2d(3, 2))
    classifier = nn.Sequential(
        nn.Linear(c5 * size * size, hidden), nn.ReLU(), nn.Dropout(p),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(p), nn.Linear(hidden, model_config["num_classes"]))
    return nn.Sequential(features, nn.Flatten(), classifier)


def copy_weights_to_torch(ours, theirs):
    """Give the PyTorch net minialex's weights (same order of parameters)."""
    import torch
    with torch.no_grad():
        for p_ours, p_theirs in zip(ours.parameters(), theirs.parameters()):
            assert tuple(p_theirs.shape) == p_ours.shape
            p_theirs.copy_(torch.from_numpy(p_ours.numpy()))

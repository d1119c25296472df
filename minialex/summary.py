"""A per-layer table of a model: output shape, parameters and multiply-accumulates (MACs) per image.

MACs count the products of the convolutions and fully connected layers, as the table in docs/alexnet.md does:

    Conv2d:  O * (C / groups) * kH * kW * OH * OW        Linear:  in * out

ReLU, LRN, pooling and dropout are listed with 0 (their few operations per element are not MACs).
The shapes come from running the model on one zero image, layer by layer, under ``no_grad``.
"""
import numpy as np

from . import nn
from .tensor import Tensor, no_grad


def _leaves(model):
    """(name, module) of the layers that AlexNet.forward runs, in order, with the flatten in its place."""
    for name, m in model.features.named_children():
        yield f"features.{name}", m
    if model.avgpool is not None:
        yield "avgpool", model.avgpool
    yield "flatten", nn.Flatten(1)
    for name, m in model.classifier.named_children():
        yield f"classifier.{name}", m


def macs(module, out_shape):
    """Multiply-accumulates per image of ``module`` producing ``out_shape`` (C, H, W) or (F,)."""
    if isinstance(module, nn.Conv2d):
        kH, kW = module.kernel_size
        return module.out_channels * (module.in_channels // module.groups) * kH * kW * out_shape[1] * out_shape[2]
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


def summary(model, input_shape=None):
    """Rows ``{"name", "layer", "paper", "output", "params", "macs"}`` for every layer of an AlexNet.

    ``input_shape`` (C, H, W) defaults to ``model.input_shape``.
    """
    input_shape = tuple(input_shape or model.input_shape)
    paper_names = {}
    for paper in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        paper_names[id(model.layer(paper))] = paper
    rows = []
    was_training = model.training
    model.eval()
    x = Tensor(np.zeros((1,) + input_shape, dtype=np.float32), device=model.layer("conv1").weight.device)
    with no_grad():
        for name, m in _leaves(model):
            x = m(x)
            params = sum(p.numel() for p in m.parameters())
            rows.append({"name": name, "layer": type(m).__name__, "paper": paper_names.get(id(m), ""),
                         "output": tuple(x.shape[1:]), "params": params, "macs": macs(m, x.shape[1:])})
    model.train(was_training)
    return rows


def format_summary(rows, title=""):
    """The rows as a text table with totals."""
    header = ("layer", "", "type", "output", "params", "MACs/image")
    lines = [(r["name"], r["paper"], r["layer"], "x".join(map(str, r["output"])), f"{r['params']:,}",
              f"{r['macs']:,}" if r["macs"] else "") for r in rows]
    total_params = sum(r["params"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    total = ("total", "", "", "", f"{total_params:,}", f"{total_macs:,}")
    widths = [max(len(str(line[i])) for line in [header, total] + lines) for i in range(len(header))]

    def fmt(line):
        left = [str(v).ljust(w) for v, w in zip(line[:4], widths[:4])]
        right = [str(v).rjust(w) for v, w in zip(line[4:], widths[4:])]
        return "  ".join(left + right).rstrip()
    rule = "-" * len(fmt(header))
    out = ([title] if title else []) + [fmt(header), rule] + [fmt(line) for line in lines] + [rule, fmt(total)]
    out.append(f"{total_params / 1e6:.3f} M parameters, {total_macs / 1e6:.1f} M multiply-accumulates per image")
    return "\n".join(out)

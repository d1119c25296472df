"""AlexNet in four variants, all with torchvision's layout: ``features`` -> (``avgpool``) -> flatten -> ``classifier``.

``alexnet(variant, num_classes=1000, **options)`` builds one of:

* ``"paper"``: Krizhevsky, Sutskever & Hinton 2012 (Sec. 3, Fig. 2), input 3x227x227.
  conv1 96 11/4 -> ReLU -> LRN -> maxpool 3/2; conv2 256 5/1/2 groups=2 -> ReLU -> LRN -> maxpool 3/2;
  conv3 384 3/1/1; conv4 384 3/1/1 groups=2; conv5 256 3/1/1 groups=2 -> maxpool 3/2;
  fc6 4096 -> ReLU -> dropout 0.5; fc7 4096 -> ReLU -> dropout 0.5; fc8 num_classes.
  LRN is the paper's (k=2, n=5, alpha=1e-4, beta=0.75), i.e. ``LocalResponseNorm(5, alpha=5e-4, beta=0.75,
  k=2)`` in PyTorch's convention (alpha divided by n). 60,965,224 parameters at 1000 classes;
  ``grouped=False`` gives the single-tower form (62,378,344).
* ``"caffe"``: bvlc_alexnet as its prototxt defines it: the same layers, LRN alpha=1e-4 in the divided
  convention with k=1, max-pooling rounded up (``ceil_mode``, no effect at 227), Caffe's fillers.
* ``"torchvision"``: the "One weird trick" single-tower net that ``torchvision.models.alexnet`` builds,
  with the same state_dict keys and shapes (``features.{0,3,6,8,10}``, ``classifier.{1,4,6}``):
  64-192-384-256-256, no LRN, ``AdaptiveAvgPool2d(6)``, dropout *before* fc6 and fc7. 61,100,840 parameters.
* ``"mini"``: a small AlexNet for 28x28 or 32x32 images (1 or 3 channels) with every layer kind of the
  paper: five convs (groups=2 on conv2/4/5), ReLU, LRN, overlapping 3/2 max-pooling, dropout on fc6/fc7.

Dropout is "inverted" (see ``minialex/functional/dropout.py``); the softmax is in the loss.

Initialisation (``init=``):
  "paper":   weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, 0 elsewhere (Sec. 5).
  "caffe":   weights N(0, 0.01), fc6/fc7 N(0, 0.005); biases 0.1 where the paper has 1, 0 elsewhere.
  "he":      weights N(0, 2/fan_in) (He et al. 2015), biases 0: what trains a deep ReLU net from scratch;
             but fc8 N(0, 0.01), so the first logits are near 0 and the loss starts at ln(num_classes).
             (Measured on "mini"/digits: with He on fc8 too the logits start with std ~4, the loss at ~6,
             and after one epoch the test error is still ~67% instead of ~43%.)
  "default": PyTorch's layer default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (what torchvision's alexnet uses).
"""
from .. import nn
from ..shapes import conv_output_size, pool_output_size

VARIANTS = ("paper", "caffe", "torchvision", "mini")
INITS = ("paper", "caffe", "he", "default")
DEFAULT_INIT = {"paper": "he", "caffe": "caffe", "torchvision": "default", "mini": "he"}
INPUT_SIZE = {"paper": 227, "caffe": 227, "torchvision": 224, "mini": 32}

PAPER_LRN = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)   # paper alpha 1e-4, times n=5 (PyTorch convention)
CAFFE_LRN = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)   # bvlc_alexnet's deploy.prototxt

# The eight learned layers by their paper names, as (container, index) in the Sequentials below.
LAYER_NAMES = {
    "paper": {"conv1": ("features", 0), "conv2": ("features", 4), "conv3": ("features", 8),
              "conv4": ("features", 10), "conv5": ("features", 12),
              "fc6": ("classifier", 0), "fc7": ("classifier", 3), "fc8": ("classifier", 6)},
    "torchvision": {"conv1": ("features", 0), "conv2": ("features", 3), "conv3": ("features", 6),
                    "conv4": ("features", 8), "conv5": ("features", 10),
                    "fc6": ("classifier", 1), "fc7": ("classifier", 4), "fc8": ("classifier", 6)},
}
LAYER_NAMES["caffe"] = LAYER_NAMES["mini"] = LAYER_NAMES["paper"]


class AlexNet(nn.Module):
    """features (N, C, H, W) -> [avgpool] -> flatten (N, D) -> classifier (N, num_classes): the logits.

    Build one with :func:`alexnet`; ``self.config`` holds the arguments that rebuild it
    (checkpoints store it), ``self.input_shape`` the (C, H, W) it expects.
    """

    def __init__(self, features, classifier, avgpool=None, *, variant, config, input_shape):
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier
        self.variant = variant
        self.config = config
        self.input_shape = tuple(input_shape)

    def forward(self, x):
        x = self.features(x)              # (N, C5, 6, 6) for the ImageNet variants
        if self.avgpool is not None:
            x = self.avgpool(x)           # (N, C5, 6, 6) whatever the input size
        x = x.flatten(1)                  # (N, C5*h*w), in C, H, W order
        return self.classifier(x)         # (N, num_classes)

    def layer(self, name):
        """A learned layer by its paper name: ``model.layer("conv1")`` ... ``model.layer("fc8")``."""
        container, index = LAYER_NAMES[self.variant][name]
        return getattr(self, container)[index]


def _paper_like(num_classes, in_channels, grouped, lrn, ceil_mode, dropout):
    """The layers shared by "paper" and "caffe" (input (N, 3, 227, 227))."""
    g = 2 if grouped else 1
    features = nn.Sequential(
        nn.Conv2d(in_channels, 96, 11, stride=4),            # 0 conv1 -> (N, 96, 55, 55)
        nn.ReLU(),
        nn.LocalResponseNorm(**lrn),
        nn.MaxPool2d(3, 2, ceil_mode=ceil_mode),             # -> (N, 96, 27, 27)
        nn.Conv2d(96, 256, 5, padding=2, groups=g),          # 4 conv2 -> (N, 256, 27, 27)
        nn.ReLU(),
        nn.LocalResponseNorm(**lrn),
        nn.MaxPool2d(3, 2, ceil_mode=ceil_mode),             # -> (N, 256, 13, 13)
        nn.Conv2d(256, 384, 3, padding=1),                   # 8 conv3 (crosses the towers)
        nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=g),         # 10 conv4
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=g),         # 12 conv5 -> (N, 256, 13, 13)
        nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=ceil_mode),             # -> (N, 256, 6, 6)
    )
    classifier = nn.Sequential(
        nn.Linear(256 * 6 * 6, 4096),                        # 0 fc6
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),                               # 3 fc7
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),                        # 6 fc8
    )
    return features, classifier


def _torchvision(num_classes, in_channels, dropout):
    """torchvision.models.alexnet's layout, index for index (input (N, 3, 224, 224))."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),  # 0  -> (N, 64, 55, 55)
        nn.ReLU(),
        nn.MaxPool2d(3, 2),                                  # 2  -> (N, 64, 27, 27)
        nn.Conv2d(64, 192, 5, padding=2),                    # 3
        nn.ReLU(),
        nn.MaxPool2d(3, 2),                                  # 5  -> (N, 192, 13, 13)
        nn.Conv2d(192, 384, 3, padding=1),                   # 6
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),                   # 8
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),                   # 10
        nn.ReLU(),
        nn.MaxPool2d(3, 2),                                  # 12 -> (N, 256, 6, 6)
    )
    classifier = nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(256 * 6 * 6, 4096),                        # 1 fc6
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),                               # 4 fc7
        nn.ReLU(),
        nn.Linear(4096, num_classes),                        # 6 fc8
    )
    return features, classifier


MINI_WIDTHS = (32, 64, 96, 96, 64)   # conv1..conv5 output channels
MINI_HIDDEN = 256                    # fc6 and fc7 width


def _mini(num_classes, in_channels, input_size, grouped, dropout, widths, hidden):
    """The paper's net shrunk for 28x28 / 32x32 images; same layer kinds in the same order.

    28x28: conv1 5/1/2 -> 28 -> pool 13 -> conv2 -> 13 -> pool 6 -> conv3..5 -> 6 -> pool 2: fc6 sees 64*2*2.
    32x32: 32 -> 15 -> 15 -> 7 -> 7 -> 3: fc6 sees 64*3*3.
    """
    c1, c2, c3, c4, c5 = widths
    g = 2 if grouped else 1
    size = input_size
    size = pool_output_size(conv_output_size(size, 5, 1, 2), 3, 2, 0, False)   # after conv1 + pool1
    size = pool_output_size(conv_output_size(size, 5, 1, 2), 3, 2, 0, False)   # after conv2 + pool2
    size = pool_output_size(size, 3, 2, 0, False)                               # conv3..5 keep the size; pool5
    if size < 1:
        raise ValueError(f"alexnet('mini'): input_size {input_size} is too small (at least 15 is needed)")
    features = nn.Sequential(
        nn.Conv2d(in_channels, c1, 5, padding=2),            # 0 conv1 -> (N, c1, S, S)
        nn.ReLU(),
        nn.LocalResponseNorm(**PAPER_LRN),
        nn.MaxPool2d(3, 2),                                  # overlapping: 3/2
        nn.Conv2d(c1, c2, 5, padding=2, groups=g),           # 4 conv2
        nn.ReLU(),
        nn.LocalResponseNorm(**PAPER_LRN),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1),                     # 8 conv3
        nn.ReLU(),
        nn.Conv2d(c3, c4, 3, padding=1, groups=g),           # 10 conv4
        nn.ReLU(),
        nn.Conv2d(c4, c5, 3, padding=1, groups=g),           # 12 conv5
        nn.ReLU(),
        nn.MaxPool2d(3, 2),                                  # -> (N, c5, size, size)
    )
    classifier = nn.Sequential(
        nn.Linear(c5 * size * size, hidden),                 # 0 fc6
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),                           # 3 fc7
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),                      # 6 fc8
    )
    return features, classifier


def initialize(model, scheme, fresh=False):
    """Re-initialise ``model``'s weights and biases in place with ``scheme`` (see the module docstring).

    ``fresh=True``: the layers were just built (with PyTorch's default init), so "default" has nothing to do.
    """
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}: expected one of {', '.join(INITS)}")
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        layer = model.layer(name)
        if scheme == "default":   # what the Conv2d/Linear constructors already drew
            if not fresh:
                nn.init.default_uniform_(layer.weight, layer.bias)
            continue
        if scheme == "he":
            if name == "fc8":
                nn.init.normal_(layer.weight, 0.0, 0.01)
            else:
                nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
            continue
        ones = name in ("conv2", "conv4", "conv5", "fc6", "fc7")     # the paper's biases of 1
        std = 0.005 if scheme == "caffe" and name in ("fc6", "fc7") else 0.01
        nn.init.normal_(layer.weight, 0.0, std)
        bias = (1.0 if scheme == "paper" else 0.1) if ones else 0.0
        nn.init.constant_(layer.bias, bias)
    return model


def alexnet(variant="paper", num_classes=1000, *, in_channels=None, input_size=None, grouped=True, init=None,
            dropout=0.5, widths=MINI_WIDTHS, hidden=MINI_HIDDEN):
    """Build an AlexNet; see the module docstring for the variants.

    Args:
        variant: "paper", "caffe", "torchvision" or "mini".
        num_classes: size of fc8.
        in_channels: image channels (default 3; "mini" also takes 1 for the digits).
        input_size: "mini" only: the image side (28 or 32, any size >= 15 works). The other variants take
            227 ("paper", "caffe") or 224 ("torchvision"; its avgpool accepts other sizes too).
        grouped: groups=2 on conv2, conv4, conv5 (the paper's two towers); False for one tower.
            Not available for "torchvision", which is single-tower by definition.
        init: "paper", "caffe", "he" or "default"; defaults to "he" for "paper" and "mini",
            "caffe" for "caffe", "default" for "torchvision".
        dropout: the drop probability of the two dropout layers (0.5 in the paper).
        widths, hidden: "mini" only: conv1..conv5 channels and the fc6/fc7 width.

    Returns an :class:`AlexNet`; its weights come from minialex's seeded generator
    (``minialex.manual_seed``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown AlexNet variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    in_channels = 3 if in_channels is None else in_channels
    init = DEFAULT_INIT[variant] if init is None else init
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {', '.join(INITS)}")
    if variant in ("paper", "caffe") and input_size not in (None, 227):
        raise ValueError(f"alexnet({variant!r}) takes {INPUT_SIZE[variant]}x{INPUT_SIZE[variant]} input, "
                         f"not {input_size}")
    input_size = INPUT_SIZE[variant] if input_size is None else int(input_size)
    config = dict(variant=variant, num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                  grouped=bool(grouped), init=init, dropout=dropout)
    avgpool = None
    if variant == "paper":
        features, classifier = _paper_like(num_classes, in_channels, grouped, PAPER_LRN, False, dropout)
    elif variant == "caffe":
        features, classifier = _paper_like(num_classes, in_channels, grouped, CAFFE_LRN, True, dropout)
    elif variant == "torchvision":
        features, classifier = _torchvision(num_classes, in_channels, dropout)
        avgpool = nn.AdaptiveAvgPool2d(6)
        config["grouped"] = False                            # single tower by definition
    else:
        widths, hidden = tuple(int(w) for w in widths), int(hidden)
        if len(widths) != 5:
            raise ValueError(f"alexnet('mini'): widths must give 5 conv widths, got {widths}")
        if grouped and any(w % 2 for w in widths):
            raise ValueError(f"alexnet('mini'): grouped=True needs even widths, got {widths}")
        features, classifier = _mini(num_classes, in_channels, input_size, grouped, dropout, widths, hidden)
        config.update(widths=list(widths), hidden=hidden)
    model = AlexNet(features, classifier, avgpool, variant=variant, config=config,
                    input_shape=(in_channels, input_size, input_size))
    return initialize(model, init, fresh=True)


def from_config(config):
    """Rebuild the model that ``model.config`` describes (e.g. from a checkpoint)."""
    config = dict(config)
    variant = config.pop("variant")
    num_classes = config.pop("num_classes")
    if "widths" in config:
        config["widths"] = tuple(config["widths"])
    return alexnet(variant, num_classes, **config)

"""Which algorithm an op runs where it has more than one: the settings for convolution and max-pooling.

Each op family has a plain algorithm (the textbook one, easy to read), a faster one tested against it,
and "auto", the default, which picks per call from the sizes. A ``with`` block changes the setting for
the ops computed inside it; their backward passes keep the forward's choice, wherever they run. The
setting belongs to the thread (a ``contextvars`` variable): a block in one thread does not change another's.

    setting              choices                              default
    conv_algorithm       "auto", "im2col", "winograd"         $MINIALEX_CONV_ALGORITHM, else "auto"
    pool_algorithm       "auto", "plain", "phase_planes"      "auto"

The settings apply to NumPy arrays, and to CuPy arrays that do not take our CUDA kernels (float64, or
MINIALEX_CUDA_KERNELS=0). Convolution has an environment variable because Winograd rounds float32
differently from im2col, so a whole training run may want one algorithm; max-pooling's algorithms give
the same bits, so a ``with`` block is all a test or a reader needs.
"""
import contextlib
import contextvars
import os

from .. import backend
from ..shapes import conv_output_size
from . import winograd

CONV_ALGORITHMS = ("auto", "im2col", "winograd")
POOL_ALGORITHMS = ("auto", "plain", "phase_planes")

_conv_setting = contextvars.ContextVar("minialex_conv_algorithm", default=None)  # None: ask the environment
_pool_setting = contextvars.ContextVar("minialex_pool_algorithm", default="auto")


@contextlib.contextmanager
def _setting(variable, name, choices, what):
    """Set ``variable`` to ``name`` (one of ``choices``) for the body of a ``with`` block."""
    if name not in choices:
        raise ValueError(f"{what}: unknown algorithm {name!r}; choose one of {', '.join(choices)}")
    token = variable.set(name)
    try:
        yield
    finally:
        variable.reset(token)


# ----------------------------------------------------------------------------- convolution
def conv_algorithm(name):
    """Use one convolution algorithm for the convolutions computed inside a ``with`` block:

    * ``"auto"`` (the default): Winograd F(2x2, 3x3) for 3x3 stride-1 layers on NumPy arrays with enough
      channels and images to profit (``WINOGRAD_MIN_CHANNELS``, ``WINOGRAD_MIN_TILES``), im2col elsewhere
      (with the images side by side where a layer has few output positions, ``SIDE_BY_SIDE_MAX_OUTPUTS``),
      and col2im with the batch as the last axis for the other stride-1 data gradients on NumPy arrays;
    * ``"im2col"``: im2col + one matrix product everywhere, and col2im for every data gradient: the
      plain textbook path;
    * ``"winograd"``: Winograd wherever it applies (3x3, stride 1), im2col elsewhere.
    The environment variable ``MINIALEX_CONV_ALGORITHM`` sets the default for a whole run."""
    return _setting(_conv_setting, name, CONV_ALGORITHMS, "conv_algorithm")


def current_algorithm():
    """The convolution algorithm in force: the innermost ``conv_algorithm`` block, else
    MINIALEX_CONV_ALGORITHM, else "auto"."""
    name = _conv_setting.get()
    if name is None:
        name = os.environ.get("MINIALEX_CONV_ALGORITHM", "auto")
        if name not in CONV_ALGORITHMS:
            raise ValueError(f"conv2d: MINIALEX_CONV_ALGORITHM={name!r} is not one of {', '.join(CONV_ALGORITHMS)}")
    return name


# Below these sizes Winograd's transforms cost more than its products save (measured on AlexNet's and
# the mini net's 3x3 layers, forward + backward; the figures are in benchmarks/RESULTS.md).
WINOGRAD_MIN_CHANNELS = 16   # per group, in and out
WINOGRAD_MIN_TILES = 256     # 2x2 output tiles over the batch: N * ceil(OH / 2) * ceil(OW / 2)


def use_winograd(x, w_shape, stride, padding, groups, algorithm):
    """Whether ``algorithm`` takes Winograd for input array x (N, C, H, W) and weights of w_shape (O, C/G, kH, kW)."""
    if algorithm == "im2col" or not winograd.applies(w_shape[2:], stride):
        return False
    if algorithm == "winograd":
        return True
    N, _, H, W = x.shape
    TH, TW = winograd.tile_counts(H + 2 * padding[0] - 2, W + 2 * padding[1] - 2)
    return (backend.xp_of(x).__name__ == "numpy" and min(w_shape[0] // groups, w_shape[1]) >= WINOGRAD_MIN_CHANNELS
            and N * TH * TW >= WINOGRAD_MIN_TILES)


# The im2col products have one image's L = OH*OW output positions as their columns; below this many the
# products are too narrow for BLAS, and "auto" puts the images side by side (one product per group for
# the whole batch). Measured on the mini net, one BLAS thread, 16 images: conv2 (L = 169) and conv3..5
# (L = 36) forward + weight gradient faster side by side, conv1 (L = 784, K = 25) slower.
SIDE_BY_SIDE_MAX_OUTPUTS = 256


def use_side_by_side(x, w_shape, stride, padding, algorithm):
    """Whether ``algorithm`` runs the im2col products of input x (N, C, H, W) with the images side by side."""
    if algorithm != "auto" or backend.xp_of(x).__name__ != "numpy":
        return False
    OH, OW = (conv_output_size(*a) for a in zip(x.shape[2:], w_shape[2:], stride, padding))
    return OH * OW < SIDE_BY_SIDE_MAX_OUTPUTS


# ----------------------------------------------------------------------------- max-pooling
def pool_algorithm(name):
    """Use one max-pooling algorithm for the max_pool2d calls inside a ``with`` block:

    * ``"auto"`` (the default): the phase planes, the faster of the two (forward and backward together)
      at every size ``benchmarks/bench_pool.py`` measures: AlexNet's pool1, pool2, pool5 and the mini net's;
    * ``"plain"``: a running maximum over the kernel offsets on strided views of the padded input,
      the version ``max_pool2d.py`` opens with;
    * ``"phase_planes"``: the same running maximum on contiguous stride-phase planes of the input
      (``max_pool2d_phase_planes.py``).
    Both give the same outputs and the same gradients, bit for bit."""
    return _setting(_pool_setting, name, POOL_ALGORITHMS, "pool_algorithm")


def current_pool_algorithm():
    """The max-pooling algorithm in force: the innermost ``pool_algorithm`` block, else "auto"."""
    return _pool_setting.get()


def use_phase_planes(algorithm):
    """Whether ``algorithm`` pools on phase planes."""
    return algorithm != "plain"

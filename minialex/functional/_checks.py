"""Argument checks shared by the ops: each raises a TypeError/ValueError that names
what was expected and what was given, before any array code can fail obscurely."""
import numbers

from ..shapes import pair
from ..tensor import Tensor


def check_tensor(x, name, op, ndim=None, floating=True):
    """``x`` must be a Tensor (of ``ndim`` dimensions, floating point when asked)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a minialex Tensor, got {type(x).__name__}")
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point tensor (float32 or float64), got {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{op}: {name} must have {want} dimensions, got shape {x.shape} ({x.ndim} dimensions)")
    return x


def check_same_device(op, *tensors):
    devices = {t.device for t in tensors if t is not None}
    if len(devices) > 1:
        raise ValueError(f"{op}: tensors are on different devices ({', '.join(sorted(devices))}); move them with .to()")


def positive_int(v, name, op, minimum=1):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return int(v)


def normalize_dim(dim, ndim, op):
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


# ----------------------------------------------------------------------------- one helper per op
def check_conv2d_args(x, weight, bias, stride, padding, groups):
    """conv2d's arguments (see conv2d.py for the shapes): returns (stride, padding) as pairs and groups."""
    op = "conv2d"
    check_tensor(x, "input", op, ndim=4)
    check_tensor(weight, "weight", op, ndim=4)
    stride = pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    groups = positive_int(groups, "groups", op)
    N, C, H, W = x.shape
    O, Cg, kH, kW = weight.shape
    if C % groups:
        raise ValueError(f"{op}: input channels ({C}) must be divisible by groups ({groups})")
    if O % groups:
        raise ValueError(f"{op}: output channels ({O}, weight shape {weight.shape}) must be divisible by groups ({groups})")
    if Cg * groups != C:
        raise ValueError(f"{op}: input has {C} channels (shape {x.shape}) but weight of shape {weight.shape} "
                         f"with groups={groups} expects {Cg * groups}")
    if H + 2 * padding[0] < kH or W + 2 * padding[1] < kW:
        raise ValueError(f"{op}: kernel {kH}x{kW} is larger than the padded input "
                         f"{H + 2 * padding[0]}x{W + 2 * padding[1]} (input {H}x{W}, padding {padding})")
    if bias is not None:
        check_tensor(bias, "bias", op, ndim=1)
        if bias.shape[0] != O:
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({O},)")
    check_same_device(op, x, weight, bias)
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but weight is {weight.dtype}; convert one with .to()")
    return stride, padding, groups


def check_max_pool2d_args(x, kernel_size, stride, padding):
    """max_pool2d's arguments: returns kernel_size, stride (the kernel size when None) and padding as pairs."""
    op = "max_pool2d"
    check_tensor(x, "input", op, ndim=4)
    kH, kW = pair(kernel_size, "kernel_size", op)
    stride = pair((kH, kW) if stride is None else stride, "stride", op)
    pH, pW = pair(padding, "padding", op, minimum=0)
    if 2 * pH > kH or 2 * pW > kW:
        raise ValueError(f"{op}: padding {(pH, pW)} must be at most half the kernel size {(kH, kW)}")
    return (kH, kW), stride, (pH, pW)


def check_pool_output_size(x, kernel_size, padding, output_size, op):
    """At least one window along each axis (ceil_mode lets the last one overhang the input)."""
    if min(output_size) < 1:
        (kH, kW), (pH, pW), (H, W) = kernel_size, padding, x.shape[2:]
        raise ValueError(f"{op}: kernel {kH}x{kW} is larger than the padded input "
                         f"{H + 2 * pH}x{W + 2 * pW} (input shape {x.shape}, padding {(pH, pW)})")

"""Shape arithmetic shared by the ops (functional/), the CUDA launches (cuda/) and the models (models/).

Along one axis of ``size`` pixels, a window of ``kernel`` pixels moving ``stride`` pixels at a time over
the input with ``padding`` pixels added on each side fits

    conv_output_size = floor((size + 2 padding - kernel) / stride) + 1

times. Pooling counts the same way, or rounds up (``ceil_mode``, Caffe's rounding), as PyTorch does.
The functions here only compute; the checks that give one clear error per bad argument live with
their callers (functional/_checks.py, cuda/launch/), except :func:`pair`, which every caller shares.
"""
import numbers


def ceil_div(a, b):
    """ceil(a / b) for integers, b > 0, computed exactly: -(-a // b) (floor division rounds down)."""
    return -(-a // b)


def conv_output_size(size, kernel, stride, padding):
    """Window positions along one axis: (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_output_size(size, kernel, stride, padding, ceil_mode=False):
    """Windows along one axis, PyTorch's ``pooling_output_shape``:

        floor mode:  (size + 2 padding - kernel) // stride + 1           (= conv_output_size)
        ceil_mode:   ceil((size + 2 padding - kernel) / stride) + 1,
                     minus 1 if that last window would start in the right padding, i.e. if
                     (out - 1) * stride >= size + padding.
    """
    if not ceil_mode:
        return conv_output_size(size, kernel, stride, padding)
    out = ceil_div(size + 2 * padding - kernel, stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window would start in the padding
        out -= 1
    return out


def pair(v, name, op=None, minimum=1):
    """An int or a pair of ints -> (a, b), each >= minimum: ``kernel_size=3`` means (3, 3).

    TypeError for anything else (a float, a bool, three numbers), ValueError below ``minimum``;
    the message starts with ``op`` ("conv2d: ...") when given.
    """
    where = f"{op}: " if op else ""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (int(v), int(v))
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in v)):
        raise TypeError(f"{where}{name} must be an int or a pair of ints, got {v!r}")
    if min(v) < minimum:
        raise ValueError(f"{where}{name} must be >= {minimum}, got {tuple(v)}")
    return int(v[0]), int(v[1])

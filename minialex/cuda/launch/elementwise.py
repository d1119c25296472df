"""Launches of kernels/elementwise.cu: bias + ReLU, bias gradients, dropout, softmax cross-entropy, SGD."""
import numpy as np

from ...shapes import ceil_div
from .common import DEFAULT_MAX_BLOCKS, MAX_GRID_YZ, TARGET_BLOCKS, THREADS, _check, _grid_1d, _i32, _launch


def _rows_cols(shape):
    """(rows, cols, C, bias_per_col) of an (N, C) or (N, C, *spatial) activation."""
    if len(shape) < 2:
        raise ValueError(f"activations must be (N, C) or (N, C, H, W), got shape {tuple(shape)}")
    N, C = int(shape[0]), int(shape[1])
    S = int(np.prod(shape[2:], dtype=np.int64))
    return (N, C, C, 1) if len(shape) == 2 else (N * C, S, C, 0)


def bias_act_forward(x, b, y, relu=True, max_blocks=DEFAULT_MAX_BLOCKS, max_grid_y=MAX_GRID_YZ):
    """y = act(x + b[channel]), b None for no bias, act ReLU or identity: bias_act_forward.

    x, y: (N, C) or (N, C, H, W); y may be x (in place).
    """
    _check(x, "x")
    _check(y, "y", shape=x.shape)
    rows, cols, C, per_col = _rows_cols(x.shape)
    if b is not None:
        _check(b, "b", shape=(C,))
    grid = (min(ceil_div(cols, THREADS), max_blocks), min(rows, max_grid_y), 1)
    args = (x, b if b is not None else x, y, _i32(rows, "rows"), _i32(cols, "cols"), _i32(C, "C"),
            np.int32(per_col), np.int32(b is not None), np.int32(bool(relu)))
    return _launch("elementwise.cu", "bias_act_forward", grid, THREADS, args)


def bias_grad_chunks(shape, target_blocks=TARGET_BLOCKS):
    """How many batch chunks the bias-gradient reduction uses for activations of ``shape``."""
    N, C = int(shape[0]), int(shape[1])
    blocks_per_chunk = C if len(shape) > 2 else ceil_div(C, THREADS)
    return max(1, min(N, ceil_div(target_blocks, max(blocks_per_chunk, 1))))


def bias_act_backward(gy, y, gx, partial, relu=True, chunks=1):
    """gx = gy * [y > 0] (relu; not written otherwise) and partial (chunks, C) bias-gradient sums.

    With chunks == 1, ``partial`` may be db itself (shape (C,)); else :func:`sum_partials` adds
    the chunks. ``y`` and ``gx`` are ignored (may be ``gy``) when relu is False.
    """
    _check(gy, "gy")
    _check(y, "y", shape=gy.shape)
    _check(gx, "gx", shape=gy.shape)
    N, C = int(gy.shape[0]), int(gy.shape[1])
    _check(partial, "partial")
    if partial.size != chunks * C:
        raise ValueError(f"partial must hold chunks * C = {chunks} * {C} floats, has {partial.size}")
    n_per_chunk = ceil_div(max(N, 1), chunks)
    if len(gy.shape) == 2:
        grid = (ceil_div(C, THREADS), chunks, 1)
        args = (gy, y, gx, partial, _i32(N, "N"), _i32(C, "C"), _i32(n_per_chunk, "n_per_chunk"),
                np.int32(bool(relu)))
        return _launch("elementwise.cu", "bias_act_backward_nc", grid, THREADS, args)
    S = int(np.prod(gy.shape[2:], dtype=np.int64))
    if S == 0:
        return None  # no pixels: the caller zero-fills db
    args = (gy, y, gx, partial, _i32(N, "N"), _i32(C, "C"), _i32(S, "S"),
            _i32(n_per_chunk, "n_per_chunk"), np.int32(bool(relu)))
    return _launch("elementwise.cu", "bias_act_backward_nchw", (C, chunks, 1), THREADS, args)


def sum_partials(partial, out, chunks):
    """out[c] = sum over k of partial[k, c], k in order (bias and split-K weight gradients)."""
    _check(partial, "partial")
    _check(out, "out")
    if partial.size != chunks * out.size:
        raise ValueError(f"partial has {partial.size} floats, expected {chunks} x {out.size}")
    return _launch("elementwise.cu", "sum_partials", _grid_1d(out.size), THREADS,
                   (partial, out, _i32(chunks, "chunks"), _i32(out.size, "C")))


def dropout_apply(x, mask, y, p, max_blocks=DEFAULT_MAX_BLOCKS):
    """y = x * mask / (1 - p) (inverted dropout; mask bool or uint8, 1 = keep): dropout_apply."""
    _check(x, "x")
    _check(mask, "mask", dtype=(np.bool_, np.uint8), shape=x.shape)
    _check(y, "y", shape=x.shape)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return _launch("elementwise.cu", "dropout_apply", _grid_1d(x.size, max_blocks), THREADS,
                   (x, mask, y, np.float32(1.0 / (1.0 - p)), np.int64(x.size)))


def softmax_xent_forward(logits, labels, probs, loss):
    """probs = softmax(logits), loss[n] = -log probs[n, labels[n]]: a block per row."""
    _check(logits, "logits", ndim=2)
    N, K = logits.shape
    _check(labels, "labels", dtype=np.int64, shape=(N,))
    _check(probs, "probs", shape=(N, K))
    _check(loss, "loss", shape=(N,))
    return _launch("elementwise.cu", "softmax_xent_forward", (N * (K > 0), 1, 1), THREADS,
                   (logits, labels, probs, loss, _i32(N, "N"), _i32(K, "K")))


def softmax_xent_backward(probs, labels, grad_loss, gz, max_blocks=DEFAULT_MAX_BLOCKS,
                          max_grid_y=MAX_GRID_YZ):
    """gz = (probs - onehot(labels)) * grad_loss[:, None]."""
    _check(probs, "probs", ndim=2)
    N, K = probs.shape
    _check(labels, "labels", dtype=np.int64, shape=(N,))
    _check(grad_loss, "grad_loss", shape=(N,))
    _check(gz, "gz", shape=(N, K))
    grid = (min(ceil_div(K, THREADS), max_blocks), min(N, max_grid_y), 1)
    return _launch("elementwise.cu", "softmax_xent_backward", grid, THREADS,
                   (probs, labels, grad_loss, gz, _i32(N, "N"), _i32(K, "K")))


def sgd_momentum(w, g, v, lr, momentum=0.9, weight_decay=0.0005, max_blocks=DEFAULT_MAX_BLOCKS):
    """In place: v = momentum*v - weight_decay*lr*w - lr*g; w = w + v (the paper's rule)."""
    _check(w, "w")
    _check(g, "g", shape=w.shape)
    _check(v, "v", shape=w.shape)
    return _launch("elementwise.cu", "sgd_momentum", _grid_1d(w.size, max_blocks), THREADS,
                   (w, g, v, np.float32(lr), np.float32(momentum), np.float32(weight_decay),
                    np.int64(w.size)))

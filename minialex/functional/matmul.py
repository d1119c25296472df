"""Matrix product with NumPy's ``matmul`` semantics (batched over leading dims).

For C = A @ B with A (..., n, k) and B (..., k, m):
    dL/dA = g @ B^T  (..., n, k),   dL/dB = A^T @ g  (..., k, m),
each summed over any batch dims that were broadcast.
"""
from ..tensor import Tensor, as_tensor
from ._checks import check_tensor
from .elementwise import unbroadcast


def matmul(a, b):
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    b = as_tensor(b, like=a)
    check_tensor(a, "left operand", "matmul", floating=False)
    check_tensor(b, "right operand", "matmul", floating=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must have at least 1 dimension (use * for scalars)")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                         f"(inner sizes {a.shape[-1]} and {b.shape[-2 if b.ndim > 1 else 0]})")
    xp = a.xp
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]            # leading (batch) dims; () for 1-D/2-D
    try:
        xp.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise ValueError(f"matmul: batch dimensions {batch_a} of {a.shape} and {batch_b} of {b.shape} "
                         "cannot be broadcast together") from None
    out = a.data @ b.data

    def backward(g):
        A, B = a.data, b.data
        if A.ndim == 1 and B.ndim == 1:                # dot product: out is a scalar
            return g * B, g * A
        # promote 1-D operands to matrices, as matmul does, then undo it
        A2 = A[None, :] if A.ndim == 1 else A          # (1, k)
        B2 = B[:, None] if B.ndim == 1 else B          # (k, 1)
        g2 = g
        if A.ndim == 1:
            g2 = xp.expand_dims(g2, -2)                # (..., 1, m)
        if B.ndim == 1:
            g2 = xp.expand_dims(g2, -1)                # (..., n, 1)
        ga = gb = None
        if a.requires_grad:
            ga = g2 @ xp.swapaxes(B2, -1, -2)          # (..., n, k)
            if A.ndim == 1:
                ga = ga[..., 0, :]
            ga = unbroadcast(ga, A.shape)
        if b.requires_grad:
            gb = xp.swapaxes(A2, -1, -2) @ g2          # (..., k, m)
            if B.ndim == 1:
                gb = gb[..., 0]
            gb = unbroadcast(gb, B.shape)
        return ga, gb
    return Tensor.from_op(out, (a, b), backward, "matmul")

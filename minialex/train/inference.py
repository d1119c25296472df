"""Using a trained run: its model back from a checkpoint, class scores for images, test-split errors.

These serve ``python -m minialex eval`` and ``predict`` (and any script) without a Trainer.
"""
import numpy as np

from .. import functional as F
from ..data import DataLoader
from ..models import from_config
from ..tensor import Tensor, no_grad
from .checkpoint import CheckpointError, load_checkpoint
from .meta import check_model_meta
from .metrics import topk_correct


def load_model(path, device="cpu"):
    """(model in eval mode, checkpoint meta) from a checkpoint written by the trainer.

    The metadata is checked (``minialex.train.meta``) before the model is built from it."""
    ckpt = load_checkpoint(path)
    meta = check_model_meta(ckpt["meta"], ckpt["model"], ckpt["path"])
    try:
        model = from_config(meta["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {ckpt['path']}: its model record cannot be built ({exc})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except ValueError as exc:
        problems = [line.strip() for line in str(exc).splitlines()[1:]]     # every mismatch, not the last one
        raise CheckpointError(f"{ckpt['path']}: the weights do not fit a {meta['model']['variant']} AlexNet "
                              f"({'; '.join(problems)})") from None
    return model.to(device).eval(), meta


def predict_scores(model, images, device="cpu", batch_size=64):
    """Softmax probabilities (N, num_classes) for float32 images (N, C, H, W), or (N, V, C, H, W) views
    whose softmax outputs are averaged (the paper's 10-crop test, Sec. 4.1)."""
    images = np.asarray(images, dtype=np.float32)
    views = images.shape[1] if images.ndim == 5 else 1
    flat = images.reshape((-1,) + images.shape[-3:])           # (N*V, C, H, W)
    out = []
    with no_grad():
        model.eval()
        for i in range(0, len(flat), batch_size):
            logits = model(Tensor(flat[i:i + batch_size], device=device))
            out.append(F.softmax(logits, 1).numpy())
    probs = np.concatenate(out)                                  # (N*V, K)
    return probs.reshape(len(images), views, -1).mean(axis=1)    # (N, K)


def evaluate_errors(model, dataset, device="cpu", batch_size=100, max_batches=None):
    """(images, top-1 error, top-5 error) of ``model`` on ``dataset`` (single or 10-crop views), in [0, 1];
    only the first ``max_batches`` batches when given."""
    correct1 = correct5 = n = 0
    for b, (x, y) in enumerate(DataLoader(dataset, batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        probs = predict_scores(model, x, device, batch_size)
        correct1 += topk_correct(probs, y, 1)
        correct5 += topk_correct(probs, y, 5)
        n += len(y)
    return n, 1 - correct1 / max(n, 1), 1 - correct5 / max(n, 1)

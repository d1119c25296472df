"""Top-k errors and the per-epoch metrics file (JSON lines: one JSON object per epoch)."""
import json
import os
from pathlib import Path

import numpy as np


def topk_correct(scores, labels, k):
    """How many rows of ``scores`` (N, C) have ``labels`` (N,) among their ``k`` highest entries.

    Ties are broken by position (argsort order); with k >= C every row counts as correct.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    k = min(k, scores.shape[1])
    top_k = np.argpartition(-scores, k - 1, axis=1)[:, :k]       # (N, k), unordered
    return int((top_k == labels[:, None]).any(axis=1).sum())


class ErrorMeter:
    """Accumulates top-1 / top-5 errors and the mean loss over batches."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.count = self.top1 = self.top5 = 0
        self.loss_sum = 0.0
        self.with_loss = False      # whether any batch came with its loss

    def update(self, scores, labels, loss=None):
        n = len(labels)
        self.count += n
        self.top1 += topk_correct(scores, labels, 1)
        self.top5 += topk_correct(scores, labels, 5)
        if loss is not None:
            self.loss_sum += float(loss) * n
            self.with_loss = True

    def result(self):
        """{"loss" (None when no batch gave one), "top1_error", "top5_error" (None with 5 classes or fewer),
        "samples"}; errors in [0, 1]."""
        if self.count == 0:
            return {"loss": None, "top1_error": None, "top5_error": None, "samples": 0}
        return {"loss": self.loss_sum / self.count if self.with_loss else None,
                "top1_error": 1.0 - self.top1 / self.count,
                "top5_error": 1.0 - self.top5 / self.count if self.num_classes > 5 else None,
                "samples": self.count}


def write_metrics(path, history):
    """Write ``history`` (a list of per-epoch dicts) as JSON lines, atomically (the file is rewritten
    whole each epoch, so a resumed run's file always matches its checkpoint)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        for record in history:
            f.write(json.dumps(record) + "\n")
    os.replace(tmp, path)


def read_metrics(path):
    """The list of per-epoch dicts in a metrics.jsonl file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def format_epoch(record, epochs):
    """One line for the log: epoch, train loss, test errors, lr, time."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"train loss {record['train_loss']:.4f}"]
    if record.get("test_top1_error") is not None:
        parts.append(f"test top-1 error {100 * record['test_top1_error']:.2f}%")
    if record.get("test_top5_error") is not None:
        parts.append(f"top-5 error {100 * record['test_top5_error']:.2f}%")
    parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)


def views_name(views):
    """ "5 crops" for "five-crop", "10 crops" for "ten-crop" (the final test's views, as its line and plot say)."""
    return {"five-crop": "5 crops", "ten-crop": "10 crops"}.get(views, views)


def format_final_test(record):
    """The line for the final multi-view test kept in ``record`` (the last epoch's), beside its single view."""
    final = record["final_test"]
    parts = [f"final test ({views_name(final['views'])} averaged, the paper's test)",
             f"top-1 error {100 * final['top1_error']:.2f}%"]
    if final.get("top5_error") is not None:
        parts.append(f"top-5 error {100 * final['top5_error']:.2f}%")
    if record.get("test_top1_error") is not None:
        parts.append(f"(single view: {100 * record['test_top1_error']:.2f}%)")
    return "  ".join(parts)

"""The main job in PyTorch: the recipe of a `minialex train` run, read from its config.json, trained by PyTorch.

    python benchmarks/bench_torch_train.py RUN_DIR              # RUN_DIR/config.json, written by `minialex train`
    python benchmarks/bench_torch_train.py RUN_DIR --threads 2  # torch.set_num_threads (default 2)

What is the same as in minialex's run: the model (``torch_nets.torch_mini_alexnet``: the same layers
and widths, started from the same weights, those minialex's seed draws), the data and its pipeline
(minialex's own datasets, random crops and DataLoader with the run's seed and prefetch, so both read the
same batches in the same order), the loss, momentum SGD with the paper's weight decay, the lr schedule
and the number of epochs, a test pass over the 1,000 held-out digits after each epoch, and the run's final
multi-view test (``--final-test``: on the digits the softmax averaged over 5 crops). What differs:
PyTorch's dropout draws, and no checkpoint or picture is written. Prints one line per epoch and a
summary with the wall time from the start of this script (imports included), as bench_train.py does for
minialex. Needs PyTorch (`pip install torch`); exits with a message without it.
"""
import argparse
import json
import os
import sys
import time

START = time.perf_counter()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)                                   # the checkout's minialex
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SCHEDULES = ("none", "step", "cosine")                     # the schedules mirrored here


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("run", help="a run directory of `minialex train` (or its config.json)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--epochs", type=int, default=None, help="override the run's epochs")
    p.add_argument("--json", metavar="PATH", help="also write the per-epoch records as JSON lines to PATH")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("bench_torch_train: PyTorch is not installed (pip install torch)")
    import numpy as np
    from minialex import backend
    from minialex.data import DataLoader
    from minialex.train.config import TrainConfig
    from minialex.train.data import build_datasets, open_test_set
    from minialex.train.trainer import build_model
    from torch_nets import copy_weights_to_torch, torch_mini_alexnet

    path = args.run if args.run.endswith(".json") else os.path.join(args.run, "config.json")
    with open(path) as f:
        config = TrainConfig.from_dict(json.load(f)).validate()
    if args.epochs is not None:
        config.epochs = args.epochs
    if config.model != "mini" or config.schedule not in SCHEDULES or config.param_groups != "single":
        sys.exit(f"bench_torch_train: mirrors --model mini with --schedule {'/'.join(SCHEDULES)} and single "
                 f"parameter groups; {path} has {config.model}, {config.schedule}, {config.param_groups}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(config.seed)

    backend.manual_seed(config.seed)                       # as the Trainer does, so the weights match
    train_set, test_set, spec = build_datasets(config)
    ours = build_model(config, spec, len(train_set.classes))
    model = torch_mini_alexnet(ours.config)
    copy_weights_to_torch(ours, model)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    if config.schedule == "cosine":                        # minialex's CosineAnnealingLR is PyTorch's, eta_min 0
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    else:
        gamma = config.gamma if config.schedule == "step" else 1.0
        sched = torch.optim.lr_scheduler.StepLR(opt, config.step_size, gamma)
    train_loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed, prefetch=config.prefetch)
    test_loader = DataLoader(test_set, config.batch_size, shuffle=True, seed=0, prefetch=config.prefetch)
    loss_fn = torch.nn.functional.cross_entropy

    def top1_error(loader):
        """The model's top-1 error on a test loader's batches (up to --max-batches): x (B, C, H, W), or
        (B, V, C, H, W) views whose softmax outputs are averaged per image."""
        model.eval()
        loader.set_epoch(0)
        wrong = total = 0
        with torch.no_grad():
            for b, (x, y) in enumerate(loader):
                if config.max_batches is not None and b >= config.max_batches:
                    break
                x = torch.from_numpy(x)
                if x.ndim == 5:
                    scores = torch.softmax(model(x.flatten(0, 1)), 1).unflatten(0, x.shape[:2]).mean(1)  # (B, K)
                else:
                    scores = model(x)                                                                   # (B, K)
                wrong += int((scores.argmax(1).numpy() != np.asarray(y)).sum())
                total += len(y)
        return wrong / total

    records = []
    print(f"PyTorch {torch.__version__}, {args.threads} threads: mini AlexNet on {config.dataset}, "
          f"{config.epochs} epochs of {len(train_loader)} batches of {config.batch_size} ({path})", flush=True)
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        model.train()
        train_loader.set_epoch(epoch)
        loss_sum, count = 0.0, 0
        for b, (x, y) in enumerate(train_loader):
            if config.max_batches is not None and b >= config.max_batches:    # as the trainer's --max-batches
                break
            x, y = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            count += len(y)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / count, "test_top1_error": top1_error(test_loader),
                  "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        sched.step()
        records.append(record)
        print(f"epoch {epoch + 1}/{config.epochs}  train loss {record['train_loss']:.4f}  test top-1 error "
              f"{100 * record['test_top1_error']:.2f}%  lr {record['lr']:g}  {record['seconds']:.1f}s", flush=True)
    views = config.final_test_views
    if views != "single":                                  # the run's final test, as the trainer's final_test()
        test_views = open_test_set(spec, config.data_path, views)
        error = top1_error(DataLoader(test_views, config.batch_size, shuffle=True, seed=0, prefetch=config.prefetch))
        records[-1]["final_test"] = {"views": views, "top1_error": error}
        print(f"final test ({views}): top-1 error {100 * error:.2f}%", flush=True)
    wall = time.perf_counter() - START
    if args.json:
        with open(args.json, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    final = records[-1].get("final_test", {"top1_error": records[-1]["test_top1_error"]})
    print(f"PyTorch mirror: wall {wall:.1f} s, final test top-1 accuracy {100 * (1 - final['top1_error']):.1f}%",
          flush=True)


if __name__ == "__main__":
    main()

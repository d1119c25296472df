"""The command line: ``python -m minialex train | eval | predict | summary | visualize | neighbors``.

    python -m minialex train                       # the mini AlexNet on the bundled digits, on the CPU
    python -m minialex train --resume runs/mini-digits-...   # continue a run exactly where it stopped
    python -m minialex eval --checkpoint runs/.../checkpoint.npz [--ten-crop]
    python -m minialex predict --checkpoint runs/.../checkpoint.npz image.png ...
    python -m minialex summary --model paper       # the per-layer table of docs/alexnet.md
    python -m minialex visualize filters --checkpoint runs/...   # conv1 kernels as a PNG (the paper's Fig. 3)
    python -m minialex neighbors --checkpoint runs/...           # retrieval by fc7 distance (Fig. 4)

A user's mistake (a bad flag value, a missing path, a checkpoint that does not fit, a dataset's
garbage files) prints one line ``minialex: error: ...`` and exits with status 2; no traceback. A NaN
loss and a full disk exit with 1 (the last good checkpoint is kept), as does ``predict`` when some of
its images could not be read (each is one line; the others are predicted; 2 when none could); Ctrl-C exits with 130
after saving a checkpoint. Warnings are one line each, ``minialex: warning: ...``.

    mpiexec -n 2 python -m minialex train          # data-parallel: --batch-size is split over the 2 processes
    python -m minialex train --ranks 2             # the same: the command runs itself again under mpiexec

On the CPU ``train`` defaults to ``--ranks auto``: with the ``mpi`` extra installed it starts one rank per
CPU (``minialex.distributed.launch``); ``--ranks 1`` trains in one process with minialex's threads.
Under mpiexec rank 0 alone prints; a rank that fails says so in one line and stops them all
(``minialex.distributed.faults``).
"""
import argparse
import sys

from .functional.algorithms import CONV_ALGORITHMS as ALGORITHMS, current_algorithm
from .models import VARIANTS
from .models.alexnet import INITS
from .train.config import DATASETS, FINAL_TESTS, PARAM_GROUPS, SCHEDULES, TrainConfig

DEFAULTS = TrainConfig()   # the defaults, shown in --help


class UsageError(Exception):
    """A mistake on the command line; printed as one line."""


def _number(kind, minimum, what):
    """An argparse ``type``: ``kind(text)`` (int or float), finite and >= ``minimum``, else a message
    saying ``what`` was expected and what was given."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value >= minimum or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    return parse


_positive_int = _number(int, 1, "a positive integer")
_nonneg_int = _number(int, 0, "an integer >= 0")
_nonneg_float = _number(float, 0.0, "a finite number >= 0")


def _ranks(text):
    """--ranks and $MINIALEX_RANKS: "auto" or a positive integer."""
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or a positive integer, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """argparse's own errors (unknown flag, bad value): one line, status 2, like ours."""
        raise UsageError(f"{self.prog}: {message}")


def _add_threads(p):
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="BLAS threads for NumPy's matrix products (default: BLAS's own choice, usually all cores; "
                        "for training on the CPU: 1, with minialex's own threads (MINIALEX_NUM_THREADS, default: "
                        "all cores) running each convolution's batch in pieces, which is faster and steadier)")


def _set_threads(args):
    if getattr(args, "threads", None):
        from .blas_threads import set_blas_threads
        if not set_blas_threads(args.threads):
            print("minialex: warning: could not find the BLAS library to set --threads; set OPENBLAS_NUM_THREADS "
                  "(or MKL_NUM_THREADS) in the environment instead", file=sys.stderr)


def _check_device(device):
    if device == "cuda":
        from . import backend
        try:
            backend.cupy_module()
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None


def _add_train(sub):
    p = sub.add_parser(
        "train", help="train an AlexNet (default: the mini net on the bundled digits)",
        description="Train an AlexNet with the paper's momentum SGD. With no flags: the 'mini' AlexNet on the "
                    "5,000 bundled MNIST digits, on the CPU, in a few minutes. Each run writes a directory with "
                    "checkpoint.npz, config.json, metrics.jsonl, curves.png and conv1_filters.png.")
    # None defaults: a resumed run keeps its own settings unless a flag is given.
    g = p.add_argument_group("model and data")
    g.add_argument("--model", choices=VARIANTS, default=None,
                   help=f"AlexNet variant: mini (28/32-pixel images), paper (227, two towers), caffe (bvlc_alexnet), "
                        f"torchvision (224, one tower) [default: {DEFAULTS.model}]")
    g.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"digits: 5,000 MNIST digits shipped with minialex; cifar10: the official binary or Python "
                        f"batches in --data-path; imagefolder: --data-path/train and --data-path/val with one "
                        f"sub-directory per class [default: {DEFAULTS.dataset}]")
    g.add_argument("--data-path", metavar="DIR", default=None, help="dataset directory (cifar10, imagefolder)")
    g.add_argument("--init", choices=INITS, default=None,
                   help="weight initialisation: paper N(0, 0.01) + biases 1, caffe, he (Kaiming), default "
                        "(PyTorch's); default: the variant's own (he for mini and paper)")
    g.add_argument("--no-groups", dest="grouped", action="store_false", default=None,
                   help="single-tower conv2/conv4/conv5 (groups=1) instead of the paper's two towers")
    g.add_argument("--dropout", type=_nonneg_float, default=None, metavar="P",
                   help="dropout probability on fc6 and fc7 [default: 0.5 as in the paper; 0.3 for mini]")
    g.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="train without random crops/flips")
    g.add_argument("--color-pca", action="store_true", default=None,
                   help="add the paper's PCA colour noise (RGB datasets only)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                   help=f"total number of epochs (a resumed run continues up to N; under --schedule cosine that "
                        f"starts a new cosine over the epochs added) [default: {DEFAULTS.epochs}]")
    g.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help=f"images per SGD step [default: {DEFAULTS.batch_size}]")
    g.add_argument("--lr", type=_nonneg_float, default=None,
                   help=f"learning rate [default: {DEFAULTS.lr}]; on --resume: the lr from there on (the schedule "
                        f"restarts from it)")
    g.add_argument("--momentum", type=_nonneg_float, default=None, help=f"momentum m in v <- m v - wd lr w - lr g "
                                                                        f"[default: {DEFAULTS.momentum}]")
    g.add_argument("--weight-decay", type=_nonneg_float, default=None, metavar="WD",
                   help=f"weight decay wd [default: {DEFAULTS.weight_decay}]")
    g.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help=f"none; step: lr x gamma every --step-size epochs; plateau: the paper's rule, lr x gamma "
                        f"when the test error stops improving (at most 3 times); cosine: lr x (1 + cos(pi e / E)) / 2 "
                        f"after e of the E epochs [default: {DEFAULTS.schedule}]")
    g.add_argument("--step-size", type=_positive_int, default=None, metavar="N",
                   help=f"epochs between lr steps (--schedule step) [default: {DEFAULTS.step_size}]")
    g.add_argument("--gamma", type=_nonneg_float, default=None, help=f"lr factor of a step [default: {DEFAULTS.gamma}]")
    g.add_argument("--patience", type=_nonneg_int, default=None, metavar="N",
                   help=f"epochs without improvement before a plateau step [default: {DEFAULTS.patience}]")
    g.add_argument("--param-groups", choices=PARAM_GROUPS, default=None,
                   help=f"single: one lr and decay for all; caffe: biases at 2 x lr without weight decay "
                        f"[default: {DEFAULTS.param_groups}]")
    g.add_argument("--seed", type=_nonneg_int, default=None,
                   help=f"seed of the weights, data order, augmentation and dropout [default: {DEFAULTS.seed}]")
    g = p.add_argument_group("run")
    g.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help=f"cpu (NumPy) or cuda (CuPy, NVIDIA GPU) [default: {DEFAULTS.device}]")
    g.add_argument("--out", metavar="DIR", default=None,
                   help="run directory [default: runs/<model>-<dataset>-<date-time>; a resumed run: its own]")
    g.add_argument("--resume", metavar="PATH", default=None,
                   help="continue the run in this directory (or checkpoint file) up to --epochs; it keeps its "
                        "settings, so its final weights equal an uninterrupted run's. --lr, --schedule, "
                        "--step-size, --gamma, --patience and --max-batches may be changed explicitly: the run "
                        "says it is then no longer bit-exact, and config.json records the change")
    g.add_argument("--max-batches", type=_nonneg_int, default=None, metavar="N",
                   help="at most N batches per epoch, in training and in testing (quick trials); a resumed run "
                        "keeps its limit: --max-batches N changes it, --max-batches 0 lifts it")
    g.add_argument("--log-interval", type=_nonneg_int, default=None, metavar="N",
                   help="also print the running loss every N batches (0: once per epoch) [default: 0]")
    g.add_argument("--prefetch", type=_nonneg_int, default=None, metavar="N",
                   help=f"batches loaded ahead in a background thread (0: none) [default: {DEFAULTS.prefetch}]")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars (default: when stderr is a terminal)")
    g.add_argument("--conv-algorithm", choices=ALGORITHMS, default=None,
                   help="CPU convolutions: auto (Winograd F(2x2,3x3) for 3x3 stride-1 layers where it pays, "
                        "im2col elsewhere), im2col (the textbook path everywhere), winograd (wherever it "
                        "applies); the run records it, as its float32 rounding differs "
                        "[default: $MINIALEX_CONV_ALGORITHM, else auto]")
    g.add_argument("--final-test", choices=FINAL_TESTS, default=None,
                   help="the test after the last epoch, beside the per-epoch single-view one: five-crop averages "
                        "the softmax over the paper's 4 corner and centre crops of the padded image, ten-crop "
                        "adds their mirrors, single skips it; auto: five-crop on the digits, single elsewhere "
                        f"[default: {DEFAULTS.final_test}]")
    g.add_argument("--ranks", type=_ranks, default=None, metavar="K",
                   help="processes that train together on this machine, data-parallel over MPI: K > 1 runs this "
                        "command again under mpiexec -n K (the mpi extra), each rank on 1/K of the batch; 1: one "
                        "process with minialex's threads; auto: on the CPU with mpi4py installed, one rank per CPU "
                        "(each with at least 8 images of the batch), unless MINIALEX_NUM_THREADS or --threads "
                        "is set; a resumed run: the ranks it was trained with [default: $MINIALEX_RANKS, else auto]")
    _add_threads(g)
    p.set_defaults(func=cmd_train)


def _add_checkpoint(p):
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint.npz or a run directory")


def _add_data_path(p):
    p.add_argument("--data-path", metavar="DIR", default=None,
                   help="dataset directory (cifar10, imagefolder); default: the one the run used")


def _add_eval(sub):
    p = sub.add_parser("eval", help="top-1/top-5 error of a checkpoint on the test split",
                       description="Evaluate a checkpoint on its dataset's test split.")
    _add_checkpoint(p)
    _add_data_path(p)
    views = p.add_mutually_exclusive_group()
    views.add_argument("--five-crop", dest="views", action="store_const", const="five-crop", default="single",
                       help="average the softmax over the paper's 5 crops of the padded or resized image "
                            "(4 corners + centre; the digits' multi-view test, what `train` reports last)")
    views.add_argument("--ten-crop", dest="views", action="store_const", const="ten-crop",
                       help="average the softmax over the paper's 10 views (the 5 crops and their mirrors; "
                            "mirrors do not suit digits)")
    p.add_argument("--batch-size", type=_positive_int, default=100, metavar="N", help="images per batch")
    p.add_argument("--max-batches", type=_positive_int, default=None, metavar="N",
                   help="evaluate only the first N batches (a quick check; the line says how many images)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu or cuda")
    _add_threads(p)
    p.set_defaults(func=cmd_eval)


def _add_predict(sub):
    p = sub.add_parser("predict", help="the top-5 classes of image files",
                       description="Classify image files (PNG, JPEG, ...; needs Pillow) with a checkpoint. "
                                   "Expected input: what the net was trained on. The digits net expects a "
                                   "white digit on a black background, roughly centred (MNIST); a dark digit "
                                   "on a light background is detected by its bright border and inverted, "
                                   "with a warning (see --invert). An image that cannot be read is one "
                                   "error line; the others are still predicted. Exit status: 0, 1 when some "
                                   "images could not be read, 2 when none could.")
    _add_checkpoint(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top", type=_positive_int, default=5, metavar="K", help="how many classes to list")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="digits only: invert black-on-white images to MNIST's white on black; auto (default): "
                        "when the image's border is bright, saying so")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu or cuda")
    _add_threads(p)
    p.set_defaults(func=cmd_predict)


def _add_summary(sub):
    p = sub.add_parser("summary", help="per-layer output shapes, parameters and MACs",
                       description="Print a model's layers with output shape, parameters and multiply-accumulates "
                                   "per image, and the totals.")
    p.add_argument("--model", choices=VARIANTS, default="paper", help="AlexNet variant")
    p.add_argument("--num-classes", type=_positive_int, default=None, metavar="K",
                   help="classes (default: 1000; 10 for mini)")
    p.add_argument("--no-groups", dest="grouped", action="store_false",
                   help="single tower (groups=1 on conv2/4/5)")
    p.add_argument("--in-channels", type=_positive_int, default=3, metavar="C", help="image channels")
    p.add_argument("--input-size", type=_positive_int, default=None, metavar="S",
                   help="image side (mini: 28 or 32; torchvision: any >= 63)")
    p.set_defaults(func=cmd_summary)


def _add_visualize(sub):
    p = sub.add_parser("visualize", help="pictures of a trained model (filters)",
                       description="Write pictures of a checkpoint's model as PNG files.")
    what = p.add_subparsers(dest="what", metavar="WHAT", parser_class=_Parser)
    what.required = True
    f = what.add_parser("filters", help="the learned kernels of a conv layer as a grid (the paper's Figure 3)",
                        description="Write a conv layer's kernels as a grid PNG (the paper's Figure 3): colour "
                                    "for RGB kernels, grey otherwise, each kernel scaled on its own.")
    _add_checkpoint(f)
    f.add_argument("--layer", default="conv1", choices=("conv1", "conv2", "conv3", "conv4", "conv5"),
                   help="which conv layer (default conv1)")
    f.add_argument("--out", metavar="PNG", default=None, help="output file (default: <layer>_filters.png "
                                                               "next to the checkpoint)")
    f.set_defaults(func=cmd_visualize_filters)


def _add_neighbors(sub):
    p = sub.add_parser("neighbors", help="test images and their nearest neighbours by fc7 distance (Figure 4)",
                       description="For some test images, find the test images whose fc7 features (the last "
                                   "hidden layer, 4096-d in the paper) are closest in Euclidean distance, and "
                                   "write one row per query to a PNG (the paper's Figure 4, Sec. 6.1).")
    _add_checkpoint(p)
    p.add_argument("--queries", type=_positive_int, default=8, metavar="Q", help="how many query images (default 8)")
    p.add_argument("--k", type=_positive_int, default=6, metavar="K", help="neighbours per query (default 6)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="which queries: a seeded random choice (default 0)")
    _add_data_path(p)
    p.add_argument("--out", metavar="PNG", default=None, help="output file (default: neighbors.png next to the "
                                                               "checkpoint)")
    _add_threads(p)
    p.set_defaults(func=cmd_neighbors)


def build_parser():
    parser = _Parser(prog="minialex", description="AlexNet from parts a person can read.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
    _add_summary(sub)
    _add_visualize(sub)
    _add_neighbors(sub)
    return parser


# ---------------------------------------------------------------------- commands
TRAIN_FIELDS = [name for name in TrainConfig.__dataclass_fields__]


def cmd_train(args):
    import os

    from . import backend
    from .distributed import cores_per_rank, setup_together, stop_together, world
    from .train import NonFiniteLossError, Trainer
    from .blas_threads import set_blas_threads
    _start_ranks(args)             # K > 1 ranks asked for: this process becomes mpiexec -n K (does not return)
    comm = world()                 # under mpiexec: this process's rank among K; else one process
    backend.reuse_freed_memory()   # every step frees and re-allocates the same big arrays; keep them mapped
    given = {name: getattr(args, name) for name in TRAIN_FIELDS if getattr(args, name, None) is not None}

    def build():
        if args.resume:
            return Trainer.resume(args.resume, progress=args.progress, comm=comm, **given)
        return Trainer(TrainConfig(**given), progress=args.progress, comm=comm)
    trainer = setup_together(comm, build)        # a setup error on any rank stops every rank, said once
    if args.threads is None and trainer.config.device == "cpu":
        # One BLAS thread; minialex's own threads run each convolution's batch in pieces side by side
        # (minialex.parallel.images_per_piece), im2col and all. Measured on 2 cores: the mini net's step
        # 76 -> 55-61 ms, the paper net's at batch 16 1.37 -> 1.11 s; and no seconds-long stalls of
        # BLAS threads spin-waiting for each other when the cores are shared.
        set_blas_threads(1)
    elif args.threads is None and comm.size > 1:  # K ranks on a machine share its cores
        set_blas_threads(cores_per_rank(comm))
    if comm.size > 1:
        os.environ.setdefault("MINIALEX_NUM_THREADS", str(cores_per_rank(comm)))
    with stop_together(comm, agreed=(NonFiniteLossError,)):   # a failing rank: one line, MPI_Abort
        status = trainer.fit()
    if status == "interrupted":
        return 130
    if status == "complete":                # nothing to do: said so, with how to extend it
        return 0
    if comm.rank == 0:
        print(f"done: {trainer.out}")
    return 0


def _start_ranks(args):
    """--ranks (``minialex.distributed.launch``): run this command again under mpiexec when it asks for K > 1
    ranks, with the progress bars it would have shown; otherwise return and train in this process."""
    import os

    from .distributed import launch, launched_by_mpi, world
    from .train import CheckpointError, load_checkpoint
    flag = args.ranks
    if flag is None:
        try:
            args.ranks = _ranks(os.environ.get("MINIALEX_RANKS", "auto"))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"MINIALEX_RANKS: {exc}") from None
    if launched_by_mpi():                       # mpiexec started the ranks already: only a flag can contradict it
        if isinstance(flag, int) and flag != world().size:
            raise UsageError(f"--ranks {flag}, but mpiexec started {world().size} rank(s): give one or the other")
        return
    requested = args.ranks
    if requested == "auto" and (args.threads is not None or os.environ.get("MINIALEX_NUM_THREADS")):
        requested = 1                           # the user chose how one process uses the cores
    settings, resumed_ranks = {}, None
    if args.resume:
        try:
            meta = load_checkpoint(args.resume, meta_only=True)["meta"]
        except CheckpointError:
            return                              # the trainer says what is wrong with it, in one process
        settings = meta.get("train") if isinstance(meta.get("train"), dict) else {}
        resumed_ranks = meta.get("ranks")
    device = args.device or settings.get("device", DEFAULTS.device)
    batch_size = args.batch_size or settings.get("batch_size", DEFAULTS.batch_size)
    try:
        ranks = launch.ranks_to_start(requested, device, batch_size if isinstance(batch_size, int) else 0,
                                      resumed_ranks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ranks > 1:
        argv = list(args.argv)
        if args.progress is None and sys.stderr.isatty():   # rank 0's stderr is mpiexec's pipe, not the terminal
            argv.append("--progress")
        try:
            launch.relaunch(argv, ranks)
        except OSError as exc:                  # mpiexec is there but cannot be run
            raise UsageError(f"--ranks {ranks}: could not start {launch.mpiexec_path()}: {exc.strerror or exc}") from None


def cmd_eval(args):
    from .train import evaluate_errors, load_model
    from .train.data import open_test_set
    _check_device(args.device)
    model, meta = load_model(args.checkpoint, args.device)
    spec = meta["data"]["spec"]
    data_path = args.data_path or meta.get("train", {}).get("data_path")
    test = open_test_set(spec, data_path, views=args.views)
    if list(test.classes) != meta["data"]["classes"]:
        raise UsageError(f"the dataset's classes {list(test.classes)[:5]}... do not match the checkpoint's "
                         f"{meta['data']['classes'][:5]}...")
    n, top1, top5 = evaluate_errors(model, test, args.device, args.batch_size, args.max_batches)
    view = {"single": "single view", "five-crop": "5-crop", "ten-crop": "10-crop"}[args.views]
    line = f"{spec['dataset']} test split, {n} images, {view}: top-1 error {100 * top1:.2f}%"
    if len(test.classes) > 5:
        line += f", top-5 error {100 * top5:.2f}%"
    print(line)
    return 0


def cmd_predict(args):
    import numpy as np

    from .data import BadImageError
    from .train import load_model, predict_scores
    from .train.data import bright_background, image_view, read_image
    _check_device(args.device)
    model, meta = load_model(args.checkpoint, args.device)
    spec, classes = meta["data"]["spec"], meta["data"]["classes"]
    paths, images, failed = [], [], 0
    for path in args.images:                     # a bad file is one line; the others are still predicted
        try:
            pixels = read_image(path, spec)
        except (FileNotFoundError, BadImageError) as exc:
            print(f"minialex: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if spec["dataset"] == "digits" and args.invert != "no":
            if args.invert == "yes":
                pixels = 255 - pixels
            elif bright_background(pixels):
                pixels = 255 - pixels
                print(f"minialex: warning: {path} looks like a dark digit on a light background; the digits net "
                      f"expects white on black (MNIST), so it was inverted (--invert no keeps it as is)",
                      file=sys.stderr)
        paths.append(path)
        images.append(image_view(pixels, spec))
    if images:
        probs = predict_scores(model, np.stack(images), args.device)      # (N, K) from (N, C, S, S)
        for path, p in zip(paths, probs):
            order = np.argsort(-p)[:args.top]
            print(path + ":  " + "  ".join(f"{classes[k]} {100 * p[k]:.1f}%" for k in order))
    if failed and len(args.images) > 1:
        print(f"minialex: error: {failed} of {len(args.images)} images could not be read", file=sys.stderr)
    return 0 if not failed else 1 if images else 2      # 1: some predicted, some not; 2: none could be read


def cmd_summary(args):
    from .models import alexnet
    from .summary import format_summary, summary
    num_classes = args.num_classes or (10 if args.model == "mini" else 1000)
    model = alexnet(args.model, num_classes, in_channels=args.in_channels, input_size=args.input_size,
                    grouped=args.grouped, init="default")
    size = model.input_shape
    title = (f"AlexNet '{args.model}'{'' if model.config['grouped'] else ' (one tower)'}, input "
             f"{size[0]}x{size[1]}x{size[2]}, {num_classes} classes")
    print(format_summary(summary(model), title))
    return 0


def _beside_checkpoint(checkpoint, name):
    import pathlib
    path = pathlib.Path(checkpoint)
    return str((path if path.is_dir() else path.parent) / name)


def cmd_visualize_filters(args):
    from .train import load_model
    from .visualize import save_filters
    model, _ = load_model(args.checkpoint, "cpu")
    out = args.out or _beside_checkpoint(args.checkpoint, f"{args.layer}_filters.png")
    save_filters(model, out, args.layer)
    print(f"wrote {out}")
    return 0


def cmd_neighbors(args):
    import numpy as np

    from .data import DataLoader
    from .train import load_model
    from .train.data import open_test_set
    from .visualize import save_neighbours_figure
    model, meta = load_model(args.checkpoint, "cpu")
    spec = meta["data"]["spec"]
    test = open_test_set(spec, args.data_path or meta.get("train", {}).get("data_path"))
    if args.k >= len(test):
        raise UsageError(f"--k {args.k} needs more than {args.k} test images; the test split has {len(test)}")
    batches = list(DataLoader(test, 256))
    images = np.concatenate([x for x, _ in batches])                   # (N, C, H, W), as the model sees them
    labels = np.concatenate([y for _, y in batches])                   # (N,)
    queries = np.random.default_rng(args.seed).choice(len(images), size=min(args.queries, len(images)),
                                                      replace=False)
    out = args.out or _beside_checkpoint(args.checkpoint, "neighbors.png")
    neighbours = save_neighbours_figure(model, images, queries, out, k=args.k)
    same = (labels[neighbours] == labels[queries][:, None]).mean()
    print(f"{100 * same:.1f}% of the {neighbours.size} neighbours share their query's label")
    print(f"wrote {out}")
    return 0


def _one_line_warning(message, category, filename, lineno, line=None):
    """Warnings (a skipped image, a skipped symlink loop) as ``minialex: warning: ...``, one line each."""
    return f"minialex: warning: {str(message).replace(chr(10), ' ')}\n"


def main(argv=None):
    import errno
    import warnings

    from .data import DatasetError
    from .data.image_folder import BadImageError
    from .distributed.communicator import launcher_rank
    from .data.safe_pickle import UnsafePickleError
    from .train import CheckpointError, ConfigError, NonFiniteLossError
    from .train.checkpoint import DiskFullError
    parser = build_parser()
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        args = parser.parse_args(argv)
        args.argv = sys.argv[1:] if argv is None else list(argv)    # what --ranks passes on to mpiexec
        try:                                    # every command may convolve: check the setting up front
            current_algorithm()
        except ValueError as exc:
            raise UsageError(str(exc).replace("conv2d: ", "")) from None
        _set_threads(args)
        return args.func(args)
    except (NonFiniteLossError, DiskFullError) as exc:
        print(f"minialex: error: {exc}", file=sys.stderr)
        return 1
    except (UsageError, ConfigError, CheckpointError, FileNotFoundError, NotADirectoryError, PermissionError,
            BadImageError, UnsafePickleError, DatasetError, ImportError) as exc:
        message = str(exc).replace("\n", " ")
        if launcher_rank() == 0:               # under mpiexec every rank read the same flags: say it once
            print(message if message.startswith("minialex") else f"minialex: error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:                      # a full disk while writing metrics, pictures, config.json
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"minialex: error: the disk is full ({exc.strerror}){where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minialex: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning

"""What a trainer checkpoint's metadata must hold, checked before anything is built from it.

The metadata is JSON that a person can edit (or a hostile file can forge), and the model is built
from it: ``num_classes: 1e9`` would allocate a terabyte before any weight is compared. So every
field that ``load_model`` and ``Trainer.resume`` use is checked here first, for its type and its
range, and every size of the model (``num_classes``, ``in_channels``, the mini net's ``widths``
and ``hidden``) against the weights the file stores (whose sizes the checkpoint reader has already
bounded by the file's size) and against the data record (the classes, the input pipeline).
Each problem is a :class:`CheckpointError` naming the file, the field and what was expected.
"""
import math
import numbers

from ..models import VARIANTS
from ..models.alexnet import INITS, LAYER_NAMES
from .checkpoint import CheckpointError
from .config import DATASETS, ConfigError
from .data import TEST_VIEWS, make_spec

MODEL_KEYS = {"variant", "num_classes", "in_channels", "input_size", "grouped", "init", "dropout", "widths",
              "hidden"}
SPEC_SHAPE_KEYS = ("channels", "size", "pad", "resize", "flip")   # fixed by the dataset and the model


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class _Checker:
    def __init__(self, path):
        self.path = path

    def fail(self, what):
        raise CheckpointError(f"checkpoint {self.path}: {what}")

    def mapping(self, value, field):
        if not isinstance(value, dict):
            self.fail(f"its metadata has no {field} record" if value is None else
                      f"{field} must be a JSON object, got {type(value).__name__}")
        return value

    def count(self, value, field, minimum=0):
        if not _is_int(value) or value < minimum:
            self.fail(f"{field} must be an integer >= {minimum}, got {value!r}")
        return value


def check_model_meta(meta, model_arrays, path):
    """Check ``meta["model"]`` and ``meta["data"]`` of a checkpoint whose model weights are
    ``model_arrays`` (name -> ndarray) before ``from_config`` builds anything. Returns ``meta``."""
    c = _Checker(path)
    model = c.mapping(meta.get("model"), "model")
    data = c.mapping(meta.get("data"), "data")
    unknown = sorted(set(model) - MODEL_KEYS)
    if unknown:
        c.fail(f"model has unknown settings {unknown}")
    variant = model.get("variant")
    if variant not in VARIANTS:
        c.fail(f"model.variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    num_classes = c.count(model.get("num_classes"), "model.num_classes", 1)
    if model.get("init") is not None and model["init"] not in INITS:
        c.fail(f"model.init must be one of {', '.join(INITS)}, got {model['init']!r}")
    if "grouped" in model and not isinstance(model["grouped"], bool):
        c.fail(f"model.grouped must be true or false, got {model['grouped']!r}")
    if "dropout" in model and not (_is_number(model["dropout"]) and 0 <= model["dropout"] < 1):
        c.fail(f"model.dropout must be a number in [0, 1), got {model['dropout']!r}")

    classes = data.get("classes")
    if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
        c.fail(f"data.classes must be a list of class names, got {type(classes).__name__}")
    if len(classes) != num_classes:
        c.fail(f"model.num_classes is {num_classes}, but data.classes lists {len(classes)} classes")
    spec = c.mapping(data.get("spec"), "data.spec")
    _check_spec(c, spec, variant)
    for name, want in (("in_channels", spec["channels"]), ("input_size", spec["size"])):
        if model.get(name) is not None and model[name] != want:
            c.fail(f"model.{name} is {model[name]!r}, but the data record (data.spec) says {want}")

    # Every size that scales an allocation is a dimension of a stored weight: compare before building.
    def stored(layer):
        container, index = LAYER_NAMES[variant][layer]
        name = f"{container}.{index}.weight"
        if name not in model_arrays:
            c.fail(f"it holds no weights for {layer} ({name}) of a {variant} AlexNet")
        return model_arrays[name].shape

    sizes = [("num_classes", num_classes, "fc8", 0), ("in_channels", spec["channels"], "conv1", 1)]
    if variant == "mini":
        widths, hidden = model.get("widths"), model.get("hidden")
        if not isinstance(widths, list) or len(widths) != 5 or not all(_is_int(w) and w >= 1 for w in widths):
            c.fail(f"model.widths must be a list of 5 positive integers, got {widths!r}")
        c.count(hidden, "model.hidden", 1)
        sizes += [(f"widths[{i}]", w, f"conv{i + 1}", 0) for i, w in enumerate(widths)]
        sizes.append(("hidden", hidden, "fc6", 0))
    elif "widths" in model or "hidden" in model:
        c.fail(f"model.widths and model.hidden belong to the mini net, not to {variant}")
    for field, value, layer, axis in sizes:
        shape = stored(layer)
        if len(shape) <= axis or shape[axis] != value:
            c.fail(f"model.{field} is {value}, but the stored {layer} weights have shape {shape}")
    if "train" in meta:                                  # eval and neighbors read train.data_path
        data_path = c.mapping(meta["train"], "train").get("data_path")
        if data_path is not None and not isinstance(data_path, str):
            c.fail(f"train.data_path must be a path or null, got {data_path!r}")
    return meta


# Each per-epoch record's fields (what the epoch line, metrics.jsonl and curves.png read): name -> may it be null.
RECORD_FIELDS = {"epoch": False, "train_loss": False, "test_loss": True, "test_top1_error": True,
                 "test_top5_error": True, "lr": False, "seconds": False}


def _check_history(c, history, epoch):
    """One record per finished epoch, numbered 1..epoch, each with the fields the reports read, and the
    final multi-view test (when there is one) with its views, image count and errors."""
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        c.fail(f"history must be a list of per-epoch records, got {type(history).__name__}")
    if len(history) != epoch:
        c.fail(f"history holds {len(history)} per-epoch records, but the run has finished {epoch} epochs")
    for i, record in enumerate(history):
        where = f"history[{i}]"
        if record.get("epoch") != i + 1 or not _is_int(record.get("epoch")):
            c.fail(f"{where}.epoch must be {i + 1}, got {record.get('epoch')!r}")
        for key, nullable in RECORD_FIELDS.items():
            value = record.get(key)
            if not (_is_number(value) or (nullable and value is None)):
                c.fail(f"{where}.{key} must be a number{' or null' if nullable else ''}, got {value!r}")
        if "final_test" in record:
            final = c.mapping(record["final_test"], f"{where}.final_test")
            if final.get("views") not in TEST_VIEWS or final["views"] == "single":
                c.fail(f"{where}.final_test.views must be five-crop or ten-crop, got {final.get('views')!r}")
            c.count(final.get("images"), f"{where}.final_test.images", 1)
            for key in ("top1_error", "top5_error"):
                if not (_is_number(final.get(key)) or (key == "top5_error" and final.get(key) is None)):
                    c.fail(f"{where}.final_test.{key} must be a number, got {final.get(key)!r}")


def _check_spec(c, spec, variant):
    dataset = spec.get("dataset")
    if dataset not in DATASETS:
        c.fail(f"data.spec.dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    try:
        expected = make_spec(dataset, variant)
    except ConfigError as exc:
        c.fail(f"its data record does not fit its model ({exc})")
    for key in SPEC_SHAPE_KEYS:
        if spec.get(key) != expected[key]:
            c.fail(f"data.spec.{key} is {spec.get(key)!r}; a {variant} net on {dataset} uses {expected[key]!r}")
    for key in ("mean", "std"):
        values = spec.get(key)
        if not isinstance(values, list) or len(values) != spec["channels"] or not all(map(_is_number, values)):
            c.fail(f"data.spec.{key} must be a list of {spec['channels']} numbers, got {values!r}")
    if not all(s > 0 for s in spec["std"]):
        c.fail(f"data.spec.std must be positive, got {spec['std']}")


def check_train_meta(meta, path):
    """Check what ``Trainer.resume`` reads besides the model: the settings and the run's position.

    Returns the settings dict (``meta["train"]``); TrainConfig checks each setting's value."""
    c = _Checker(path)
    settings = c.mapping(meta.get("train"), "train")
    c.mapping(meta.get("model"), "model")
    c.mapping(meta.get("data"), "data")
    classes = meta["data"].get("classes")
    if not isinstance(classes, list):
        c.fail(f"data.classes must be a list of class names, got {type(classes).__name__}")
    c.count(meta.get("epoch"), "epoch")
    c.count(meta.get("batch"), "batch")
    partial = c.mapping(meta.get("partial"), "partial")
    for key, check in (("loss_sum", _is_number), ("count", _is_int), ("seconds", _is_number)):
        if not check(partial.get(key)):
            c.fail(f"partial.{key} must be a {'count' if key == 'count' else 'number'}, got {partial.get(key)!r}")
    _check_history(c, meta.get("history"), meta["epoch"])
    c.mapping(meta.get("scheduler"), "scheduler")
    c.mapping(meta.get("rng"), "rng")
    return settings

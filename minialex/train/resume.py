"""What a resumed run may change, and how it says so.

A resume keeps the checkpoint's settings. It may change what does not alter the maths
(``RESUME_SAFE``) freely, and, explicitly, the learning rate, the schedule and --max-batches
(``RESUME_RECORDED``, and --epochs under the cosine schedule): the run is then no longer bit-exact to an
uninterrupted one, which one line
says, and each change (epoch, batch, old and new value) is added to the settings' ``changes`` list.
Any other setting that differs is an error.
"""
from pathlib import Path

from .config import ConfigError
from .meta import check_train_meta

SCHEDULE_SETTINGS = ("lr", "schedule", "step_size", "gamma", "patience")
# A resume may change these: they do not alter the maths (out: where the run is written).
RESUME_SAFE = {"epochs", "device", "log_interval", "prefetch", "out", "data_path", "final_test"}
RESUME_RECORDED = set(SCHEDULE_SETTINGS) | {"max_batches"}       # allowed, but the run is no longer exact


def schedule_settings(schedule):
    """The settings that shape the lr schedule: SCHEDULE_SETTINGS, and --epochs under the cosine schedule,
    which runs over the run's epochs: changing them on resume starts a new cosine from the current lr
    over the epochs left, recorded like a change of --lr."""
    return SCHEDULE_SETTINGS + (("epochs",) if schedule == "cosine" else ())


def resumed_settings(meta, path, overrides):
    """(settings dict for TrainConfig.from_dict, the new changes) of the run saved with ``meta`` at
    ``path``, after ``overrides`` (flag name -> value; None: not given; max_batches 0: no limit)."""
    settings = dict(check_train_meta(meta, path))
    changes = []
    recorded = RESUME_RECORDED | set(schedule_settings(overrides.get("schedule") or settings.get("schedule")))
    for name, value in overrides.items():
        if value is None:
            continue
        if name == "max_batches" and value == 0:
            value = None                                      # --max-batches 0: no limit
        if name not in RESUME_SAFE | RESUME_RECORDED:
            if value != settings.get(name):
                raise ConfigError(f"--{name.replace('_', '-')} {value} differs from the checkpoint's "
                                  f"{settings.get(name)}: a resumed run keeps its settings (start a new run "
                                  f"to change it)")
            continue
        if name in recorded and value != settings.get(name):
            changes.append({"epoch": meta["epoch"], "batch": meta["batch"], "setting": name,
                            "from": settings.get(name), "to": value})
        settings[name] = value
    if overrides.get("out") is None:
        settings["out"] = str(Path(path).parent)
    settings["changes"] = list(settings.get("changes") or []) + changes
    return settings, changes


def change_note(changes, meta):
    """The one line that says a resume changed the maths."""
    said = ", ".join(f"--{c['setting'].replace('_', '-')} {flag_value(c['to'])} (was {flag_value(c['from'])})"
                     for c in changes)
    return (f"note: {said} from epoch {meta['epoch'] + 1}, batch {meta['batch'] + 1} on: this run is no longer "
            f"bit-exact to an uninterrupted one; config.json records the change")


def flag_value(value):
    """A setting as its flag spells it (None: "0", no limit, for --max-batches)."""
    return "0 (no limit)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def differences(saved, own):
    """ "key: saved vs own" for every key where two dicts differ."""
    keys = [k for k in {**saved, **own} if saved.get(k) != own.get(k)]
    return ", ".join(f"{k}: {saved.get(k)!r} vs {own.get(k)!r}" for k in keys)

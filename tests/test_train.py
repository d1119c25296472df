"""The trainer: a short run learns; resume (after an epoch, or after Ctrl-C mid-epoch) equals an
uninterrupted run exactly; a NaN loss stops the run and keeps the last good checkpoint; the run directory."""
import json
import os
import signal

import numpy as np
import pytest

from minialex.train import (CheckpointError, ConfigError, NonFiniteLossError, TrainConfig, Trainer,
                            load_checkpoint, load_model, predict_scores)
from minialex.train.plots import filter_grid, write_png
from minialex.train.threads import blas_threads


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: steady timings when other work shares the cores (see minialex/train/threads.py)."""
    with blas_threads(1):
        yield


def tiny(tmp_path, name="run", **kw):
    """A few batches of 16 digits: seconds, not minutes."""
    settings = dict(batch_size=16, epochs=2, max_batches=3, prefetch=0, out=str(tmp_path / name))
    settings.update(kw)
    return TrainConfig(**settings)


def weights(trainer):
    return {k: v.copy() for k, v in trainer.model.state_dict().items()}


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_short_run_learns(tmp_path):
    """The default recipe, cut to 2 x 30 batches of 64 (about a full epoch): it already learns."""
    config = TrainConfig(epochs=2, max_batches=30, out=str(tmp_path / "run"))
    trainer = Trainer(config, progress=False)
    before = trainer.evaluate()                              # on 1000 test digits
    assert trainer.fit() == "finished"
    first, last = trainer.history
    assert before["top1_error"] > 0.75                       # chance: 90% error
    assert last["train_loss"] < first["train_loss"] - 0.1
    assert last["test_top1_error"] < 0.6                     # measured: ~0.3


def test_run_directory(tmp_path):
    trainer = Trainer(tiny(tmp_path, epochs=2), progress=False)
    trainer.fit()
    out = tmp_path / "run"
    names = {"checkpoint.npz", "config.json", "metrics.jsonl", "conv1_filters.png"}
    assert names <= set(os.listdir(out))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "test_top1_error", "test_top5_error", "lr", "seconds"} <= set(lines[0])
    assert (out / "conv1_filters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    try:
        import matplotlib  # noqa: F401
        assert (out / "curves.png").exists()
    except ImportError:
        assert not (out / "curves.png").exists()
    assert json.loads((out / "config.json").read_text())["batch_size"] == 16
    meta = load_checkpoint(out)["meta"]
    assert meta["epoch"] == 2 and meta["batch"] == 0 and len(meta["history"]) == 2


def test_refuses_to_overwrite_a_run(tmp_path):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(tiny(tmp_path, epochs=1), progress=False)


def test_resume_after_an_epoch_equals_uninterrupted(tmp_path):
    straight = Trainer(tiny(tmp_path, "straight"), progress=False)
    straight.fit()
    first = Trainer(tiny(tmp_path, "split", epochs=1), progress=False)
    first.fit()
    resumed = Trainer.resume(tmp_path / "split", epochs=2, progress=False)
    assert resumed.epoch == 1
    resumed.fit()
    assert_same_weights(weights(straight), weights(resumed))
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in straight.history]
    for a, b in zip(straight.optimizer.state_dict()["velocity"].values(),
                    resumed.optimizer.state_dict()["velocity"].values()):
        np.testing.assert_array_equal(a, b)


class CtrlCAt(Trainer):
    """Sends itself SIGINT (a real Ctrl-C) during batch ``at`` of epoch ``epoch``."""
    at, at_epoch = 1, 1

    def train_step(self, x, y):
        loss = super().train_step(x, y)
        if (self.epoch, self.batch) == (self.at_epoch, self.at):
            os.kill(os.getpid(), signal.SIGINT)
        return loss


def test_ctrl_c_mid_epoch_saves_and_resume_equals_uninterrupted(tmp_path):
    straight = Trainer(tiny(tmp_path, "straight"), progress=False)
    straight.fit()
    interrupted = CtrlCAt(tiny(tmp_path, "split"), progress=False)
    assert interrupted.fit() == "interrupted"
    meta = load_checkpoint(tmp_path / "split")["meta"]
    assert (meta["epoch"], meta["batch"]) == (1, 2)          # the batch that was running finished first
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    assert resumed.fit() == "finished"
    assert_same_weights(weights(straight), weights(resumed))
    assert resumed.history[-1]["train_loss"] == straight.history[-1]["train_loss"]


def test_each_epoch_trains_the_loaders_batches_in_order(tmp_path):
    """Also after a mid-epoch resume: the batches trained are the loader's, none skipped or repeated."""
    seen = []

    class Recording(CtrlCAt):
        def train_step(self, x, y):
            seen.append((self.epoch, self.batch, y.copy()))
            return super().train_step(x, y)

    assert Recording(tiny(tmp_path), progress=False).fit() == "interrupted"
    resumed = Recording.resume(tmp_path / "run", progress=False)   # at (1, 2): past the Ctrl-C at (1, 1)
    assert resumed.fit() == "finished"
    assert [(e, b) for e, b, _ in seen] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    for epoch in (0, 1):
        resumed.train_loader.set_epoch(epoch)
        expected = [y for _, y in resumed.train_loader][:3]
        assert all(np.array_equal(y, want) for (e, _, y), want in zip([s for s in seen if s[0] == epoch], expected))


def test_the_conv_algorithm_is_recorded_used_and_kept_on_resume(tmp_path, monkeypatch):
    from minialex.functional import winograd
    calls = []
    original = winograd.conv2d
    monkeypatch.setattr(winograd, "conv2d", lambda *a: calls.append(a[1].shape) or original(*a))
    monkeypatch.setenv("MINIALEX_CONV_ALGORITHM", "winograd")      # the default comes from the environment
    trainer = Trainer(tiny(tmp_path, epochs=1, max_batches=1), progress=False)
    assert trainer.config.conv_algorithm == "winograd"
    trainer.fit()
    assert calls                                                     # the mini net's 3x3 layers took it
    assert load_checkpoint(tmp_path / "run")["meta"]["train"]["conv_algorithm"] == "winograd"
    monkeypatch.delenv("MINIALEX_CONV_ALGORITHM")
    calls.clear()
    resumed = Trainer.resume(tmp_path / "run", epochs=2, progress=False)
    assert resumed.config.conv_algorithm == "winograd"               # the run's, not the environment's "auto"
    with pytest.raises(ConfigError, match="--conv-algorithm im2col differs from the checkpoint's winograd"):
        Trainer.resume(tmp_path / "run", conv_algorithm="im2col")
    Trainer(tiny(tmp_path, "plain", epochs=1, max_batches=1, conv_algorithm="im2col"), progress=False).fit()
    assert calls == []
    with pytest.raises(ConfigError, match="--conv-algorithm 'fast' is not one of: auto, im2col, winograd"):
        Trainer(tiny(tmp_path, "bad", conv_algorithm="fast"))
    monkeypatch.setenv("MINIALEX_CONV_ALGORITHM", "fast")
    with pytest.raises(ConfigError, match="MINIALEX_CONV_ALGORITHM='fast' is not one of"):
        Trainer(tiny(tmp_path, "bad-env"))


def test_checkpoints_from_before_the_setting_resume_with_im2col():
    settings = TrainConfig().to_dict()
    del settings["conv_algorithm"]
    assert TrainConfig.from_dict(settings).conv_algorithm == "im2col"


class NaNAt(Trainer):
    def train_step(self, x, y):
        if self.epoch == 1 and self.batch == 1:
            self.model.layer("fc8").bias.data[:] = np.nan
        return super().train_step(x, y)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = NaNAt(tiny(tmp_path), progress=False)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, batch 2.*end of epoch 1.*--lr"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["meta"]["epoch"] == 1
    assert all(np.isfinite(a).all() for a in ckpt["model"].values())


def test_resume_checks(tmp_path):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    with pytest.raises(ConfigError, match="--lr 0.5 differs"):
        Trainer.resume(tmp_path / "run", lr=0.5)
    with pytest.raises(ConfigError, match="--model paper differs"):
        Trainer.resume(tmp_path / "run", model="paper")
    with pytest.raises(CheckpointError, match="does not exist"):
        Trainer.resume(tmp_path / "nothing-here")


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--model paper takes 3x227x227"):
        Trainer(tiny(tmp_path, model="paper"))
    with pytest.raises(ConfigError, match="--lr must be"):
        Trainer(tiny(tmp_path, lr=-1.0))
    with pytest.raises(ConfigError, match="needs --data-path"):
        Trainer(tiny(tmp_path, dataset="cifar10"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Trainer(tiny(tmp_path, dataset="cifar10", data_path=str(tmp_path / "missing")))


def test_load_model_and_predict(tmp_path):
    trainer = Trainer(tiny(tmp_path, epochs=1), progress=False)
    trainer.fit()
    model, meta = load_model(tmp_path / "run")
    assert meta["data"]["classes"] == [str(d) for d in range(10)]
    x = np.stack([trainer.test_set[i][0] for i in range(4)])        # (4, 1, 28, 28)
    probs = predict_scores(model, x)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    views = np.stack([x, x[:, :, :, ::-1]], axis=1)                 # (4, 2, 1, 28, 28): averaged
    assert predict_scores(model, views).shape == (4, 10)


def test_filter_grid_and_png(tmp_path):
    w = np.random.default_rng(0).standard_normal((96, 3, 11, 11))
    grid = filter_grid(w)
    assert grid.shape[2] == 3 and grid.dtype == np.uint8
    grey = filter_grid(w[:10, :1])
    assert grey.ndim == 2
    write_png(tmp_path / "g.png", grid)
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(tmp_path / "g.png") as img:
        np.testing.assert_array_equal(np.asarray(img), grid)


def test_plateau_schedule_checkpoints_before_its_first_step(tmp_path):
    """The plateau rule has no best error before the first epoch ends; a Ctrl-C save then must still
    write a valid (JSON, NaN/inf-free) checkpoint, and resuming it must keep the schedule's state."""
    trainer = Trainer(tiny(tmp_path, schedule="plateau"), progress=False)
    trainer.save()
    meta = load_checkpoint(tmp_path / "run" / "checkpoint.npz")["meta"]
    assert meta["epoch"] == 0
    trainer.fit()
    resumed = Trainer.resume(tmp_path / "run", epochs=3, progress=False)
    assert resumed.scheduler.best is not None


def test_plateau_with_gamma_one_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--gamma must be < 1 with --schedule plateau"):
        Trainer(tiny(tmp_path, schedule="plateau", gamma=1.0), progress=False)

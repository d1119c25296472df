"""The trainer: a short run learns; resume (after an epoch, or after Ctrl-C mid-epoch) equals an
uninterrupted run exactly; a NaN loss stops the run and keeps the last good checkpoint; the run directory."""
import json
import os
import signal

import numpy as np
import pytest

from minialex.train import (CheckpointError, ConfigError, NonFiniteLossError, TrainConfig, Trainer, save_checkpoint,
                            load_checkpoint, load_model, predict_scores)
from minialex.train.plots import filter_change, filter_grid, write_png
from minialex.blas_threads import blas_threads


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: steady timings when other work shares the cores (see minialex/blas_threads.py)."""
    with blas_threads(1):
        yield


def tiny(tmp_path, name="run", **kw):
    """A few batches of 16 digits: seconds, not minutes. The step schedule (not the default cosine): many
    tests extend a run with --epochs on resume, which keeps a step schedule exact and restarts a cosine one."""
    settings = dict(batch_size=16, epochs=2, max_batches=3, prefetch=0, schedule="step", out=str(tmp_path / name))
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


def test_the_final_test_averages_the_softmax_over_five_crops_and_is_kept_with_the_last_epoch(tmp_path, capsys):
    """--final-test auto on the digits: after the last epoch, each test image's softmax averaged over the
    4 corner and centre crops of the padded image, on the batches the per-epoch test uses; said in one
    line, kept in the last record of metrics.jsonl and of the checkpoint's history."""
    from minialex import functional as F
    from minialex.data import DataLoader
    from minialex.tensor import Tensor, no_grad
    from minialex.train.data import open_test_set
    trainer = Trainer(tiny(tmp_path, epochs=1, max_batches=30), progress=False)     # learns enough for the
    assert trainer.config.final_test_views == "five-crop"                           # views to disagree
    trainer.fit()
    final = trainer.history[-1]["final_test"]
    assert final["views"] == "five-crop" and final["images"] == 30 * 16
    wrong = total = centre_wrong = 0        # the same images, one view at a time, averaged by hand
    views = DataLoader(open_test_set(trainer.spec, views="five-crop"), 16, shuffle=True, seed=0)
    with no_grad():
        for b, (x, y) in enumerate(views):
            if b == 30:                     # --max-batches 30
                break
            assert x.shape == (16, 5, 1, 28, 28)
            probs = [F.softmax(trainer.model.eval()(Tensor(x[:, v])), 1).numpy() for v in range(5)]
            wrong += int((np.mean(probs, axis=0).argmax(1) != y).sum())
            centre_wrong += int((probs[4].argmax(1) != y).sum())        # view 4: the centre, the single view
            total += len(y)
    assert final["top1_error"] == pytest.approx(wrong / total)
    assert trainer.history[-1]["test_top1_error"] == pytest.approx(centre_wrong / total)
    assert wrong != centre_wrong            # (so the check above tells the average from the centre view)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["final_test"] == final
    assert load_checkpoint(tmp_path / "run")["meta"]["history"][-1]["final_test"] == final
    said = capsys.readouterr().out
    assert f"final test (5 crops averaged, the paper's test)  top-1 error {100 * final['top1_error']:.2f}%" in said
    assert f"(single view: {100 * trainer.history[-1]['test_top1_error']:.2f}%)" in said


def test_curves_mark_the_final_test(tmp_path):
    pytest.importorskip("matplotlib")
    from minialex.train.plots import save_curves
    history = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 0.5, "test_top1_error": 0.03, "test_top5_error": 0.01,
                "lr": 0.01} for e in (1, 2)]
    history[-1]["final_test"] = {"views": "five-crop", "top1_error": 0.02, "top5_error": 0.0}
    assert save_curves(tmp_path / "curves.png", history)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_final_test_settings(tmp_path):
    assert TrainConfig(dataset="cifar10").final_test_views == "single"          # auto: ten test passes of photos
    assert TrainConfig(final_test="ten-crop").final_test_views == "ten-crop"
    trainer = Trainer(tiny(tmp_path, epochs=1, final_test="single"), progress=False)
    trainer.fit()
    assert "final_test" not in trainer.history[-1]
    with pytest.raises(ConfigError, match="--final-test 'three' is not one of: auto, single, five-crop, ten-crop"):
        TrainConfig(final_test="three").validate()
    resumed = Trainer.resume(tmp_path / "run", progress=False, epochs=2, final_test="five-crop")   # changes no maths
    resumed.fit()
    assert resumed.history[-1]["final_test"]["views"] == "five-crop" and "final_test" not in resumed.history[0]


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
        expected = [batch[1] for batch in resumed.train_loader][:3]   # (x, y, indices)
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
    pytest.importorskip("matplotlib")
    assert (tmp_path / "run" / "curves.png").exists()         # the curves up to the last good epoch


def test_curves_are_drawn_when_the_run_stops_not_after_every_epoch(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import minialex.train.trainer as trainer_module
    drawn = []
    monkeypatch.setattr(trainer_module, "save_curves", lambda path, history: drawn.append(len(history)) or True)
    Trainer(tiny(tmp_path, "whole", epochs=2), progress=False).fit()
    assert drawn == [2]
    drawn.clear()
    assert CtrlCAt(tiny(tmp_path, "split"), progress=False).fit() == "interrupted"
    assert drawn == [1]                                        # stopped in epoch 2: epoch 1's curves


def test_resume_checks(tmp_path):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    with pytest.raises(ConfigError, match="--momentum 0.5 differs"):
        Trainer.resume(tmp_path / "run", momentum=0.5)
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


def test_filter_change_measures_how_far_the_kernels_moved():
    w0 = np.random.default_rng(1).standard_normal((8, 1, 5, 5))
    assert filter_change(w0, w0) == pytest.approx({"relative_change": 0.0, "correlation": 1.0})
    assert filter_change(2 * w0, w0) == pytest.approx({"relative_change": 1.0, "correlation": 1.0})
    assert filter_change(-w0, w0) == pytest.approx({"relative_change": 2.0, "correlation": -1.0})


def test_signed_grid_puts_zero_at_mid_grey():
    d = np.zeros((8, 1, 2, 2))
    d[0, 0] = [[1.0, -1.0], [0.5, 0.0]]
    cell = filter_grid(d, scale=1, signed=True)[1:3, 1:3]          # kernel 0 (pad 1 around it)
    np.testing.assert_array_equal(cell, [[255, 0], [191, 128]])
    assert (filter_grid(d[1:], scale=1, signed=True) != 255).sum() == (filter_grid(d[1:], scale=1, signed=True) == 128).sum()


def test_conv1_picture_shows_the_change_and_says_how_far(tmp_path):
    """Training for a few batches: the picture has the kernels and their change side by side, and its
    caption gives the relative change and the correlation with the initial weights."""
    config = TrainConfig(epochs=1, max_batches=3, out=str(tmp_path / "run"), prefetch=0)
    trainer = Trainer(config, progress=False)
    start = trainer.conv1_initial.copy()
    np.testing.assert_array_equal(start, trainer.model.layer("conv1").weight.numpy())
    trainer.fit()
    np.testing.assert_array_equal(trainer.conv1_initial, start)
    w = trainer.model.layer("conv1").weight.numpy()
    assert not np.array_equal(w, start)
    png = (tmp_path / "run" / "conv1_filters.png").read_bytes()
    change = filter_change(w, start)
    assert 0 < change["relative_change"] < 1
    assert f"moved {100 * change['relative_change']:.0f}%".encode() in png
    assert f"initialisation {change['correlation']:.3f}".encode() in png
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(tmp_path / "run" / "conv1_filters.png") as img:
        image = np.asarray(img)
    left = filter_grid(w)
    np.testing.assert_array_equal(image[:, :left.shape[1]], left)
    np.testing.assert_array_equal(image[:, left.shape[1] + 8:], filter_grid(w - start, signed=True))


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


# ----------------------------------------------------------------------------- divergence, resume overrides
class BlowsUpInTest(Trainer):
    """After training epoch 2, fc8 is scaled so that the test logits overflow: the training losses so
    far were finite, the test loss is not (as with `--lr 0.15 --schedule none --max-batches 3`)."""

    def train_epoch(self, bar_disable):
        super().train_epoch(bar_disable)
        if self.epoch == 1:
            self.model.layer("fc8").weight.data *= np.float32(1e38)


def test_a_non_finite_test_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = BlowsUpInTest(tiny(tmp_path, epochs=3), progress=False)
    with pytest.raises(NonFiniteLossError, match=r"the test loss became (inf|nan) after epoch 2 \(its training "
                                                 r"loss was finite\): training stopped; the last good checkpoint, "
                                                 r".*\(end of epoch 1\), is kept\. Try a lower --lr \(now 0\.01\): "
                                                 r"python -m minialex train --resume .*run --lr 0\.001"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "run")["meta"]["epoch"] == 1
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_diverging_step_warns_nothing_before_the_nan_message(tmp_path, recwarn):
    with pytest.raises(NonFiniteLossError, match="loss became nan"):
        Trainer(tiny(tmp_path, lr=1e9, epochs=1), progress=False).fit()
    assert [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)] == []


def test_resuming_a_finished_run_says_it_is_complete(tmp_path, capsys):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    capsys.readouterr()
    resumed = Trainer.resume(tmp_path / "run", progress=False)
    assert resumed.fit() == "complete"
    out = capsys.readouterr().out
    assert "is already complete: 1 of 1 epochs trained" in out and "--epochs N (N > 1)" in out
    assert "resuming at" not in out


def test_max_batches_is_stated_and_can_be_changed_or_lifted_on_resume(tmp_path, capsys):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    out = capsys.readouterr().out
    assert "4000 train / 1000 test images, of which --max-batches 3 uses at most 48 / 48 per epoch" in out
    kept = Trainer.resume(tmp_path / "run", epochs=2, progress=False)
    assert kept.config.max_batches == 3
    kept.save = lambda: None                   # look at the header only
    kept.train_epoch = lambda bar_disable: setattr(kept, "stop_requested", True)
    kept.fit()
    out = capsys.readouterr().out
    assert "resuming at epoch 2, batch 1 (--max-batches 3 is the run's: --max-batches N changes it, " \
           "--max-batches 0 lifts it)" in out
    lifted = Trainer.resume(tmp_path / "run", epochs=2, max_batches=0, progress=False)
    assert lifted.config.max_batches is None and lifted._batches_this_epoch(lifted.train_loader) == 250
    assert "--max-batches 0 (no limit) (was 3) from epoch 2, batch 1 on: this run is no longer bit-exact" \
        in capsys.readouterr().out
    assert Trainer.resume(tmp_path / "run", epochs=2, max_batches=5, progress=False).config.max_batches == 5


def test_resume_with_a_new_lr_says_so_records_it_and_then_resumes_exactly(tmp_path, capsys):
    for name in ("straight", "split"):
        Trainer(tiny(tmp_path, name, epochs=1), progress=False).fit()
    straight = Trainer.resume(tmp_path / "straight", epochs=3, lr=0.005, progress=False)
    assert "--lr 0.005 (was 0.01) from epoch 2, batch 1 on: this run is no longer bit-exact to an uninterrupted " \
           "one; config.json records the change" in capsys.readouterr().out
    assert straight.optimizer.param_groups[0]["lr"] == 0.005
    straight.fit()
    Trainer.resume(tmp_path / "split", epochs=2, lr=0.005, progress=False).fit()
    record = json.loads((tmp_path / "split" / "config.json").read_text())
    assert record["lr"] == 0.005
    assert record["changes"] == [{"epoch": 1, "batch": 0, "setting": "lr", "from": 0.01, "to": 0.005}]
    capsys.readouterr()
    again = Trainer.resume(tmp_path / "split", epochs=3, progress=False)      # no new flags: exact again
    assert "bit-exact" not in capsys.readouterr().out
    again.fit()
    assert_same_weights(weights(straight), weights(again))
    assert [r["lr"] for r in again.history] == [0.01, 0.005, 0.005]


def test_resume_with_a_new_schedule_starts_it_from_the_current_lr(tmp_path):
    Trainer(tiny(tmp_path, epochs=2, schedule="step", step_size=1, gamma=0.5, param_groups="caffe"),
            progress=False).fit()
    resumed = Trainer.resume(tmp_path / "run", epochs=4, schedule="none", progress=False)
    assert [g["lr"] for g in resumed.optimizer.param_groups] == [0.0025, 0.005]    # 0.01 x 0.5^2, biases 2x
    resumed.fit()
    assert [r["lr"] for r in resumed.history] == [0.01, 0.005, 0.0025, 0.0025]
    faster = Trainer.resume(tmp_path / "run", epochs=5, lr=0.1, progress=False)
    assert [g["lr"] for g in faster.optimizer.param_groups] == [0.1, 0.2]
    assert [c["setting"] for c in faster.config.changes] == ["schedule", "lr"]


def test_a_cosine_run_interrupted_mid_epoch_resumes_exactly(tmp_path):
    straight = Trainer(tiny(tmp_path, "straight", schedule="cosine", epochs=3), progress=False)
    straight.fit()
    assert [r["lr"] for r in straight.history] == pytest.approx([0.01, 0.0075, 0.0025])   # (1 + cos(pi e / 3)) / 2
    interrupted = CtrlCAt(tiny(tmp_path, "split", schedule="cosine", epochs=3), progress=False)
    assert interrupted.fit() == "interrupted"
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    assert resumed.fit() == "finished"
    assert_same_weights(weights(straight), weights(resumed))
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in straight.history]


def test_more_epochs_for_a_cosine_run_start_a_new_cosine_from_the_lr_given(tmp_path, capsys):
    Trainer(tiny(tmp_path, schedule="cosine", epochs=2), progress=False).fit()
    with pytest.raises(ConfigError, match="its cosine schedule has brought the lr to 0; .* --lr LR"):
        Trainer.resume(tmp_path / "run", epochs=4)
    capsys.readouterr()
    resumed = Trainer.resume(tmp_path / "run", epochs=4, lr=0.004, progress=False)
    assert "--epochs 4 (was 2)" in capsys.readouterr().out
    resumed.fit()
    assert [r["lr"] for r in resumed.history] == pytest.approx([0.01, 0.005, 0.004, 0.002])
    assert {c["setting"] for c in resumed.config.changes} == {"epochs", "lr"}


def test_a_resume_on_another_number_of_threads_says_it_is_not_exact(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIALEX_NUM_THREADS", "2")
    with blas_threads(1):
        Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
        assert load_checkpoint(tmp_path / "run")["meta"]["threads"] == {"minialex": 2, "blas": 1}
        capsys.readouterr()
        Trainer.resume(tmp_path / "run", epochs=2, progress=False).fit()
        assert "note:" not in capsys.readouterr().out                   # the same threads: exact, nothing to say
        monkeypatch.setenv("MINIALEX_NUM_THREADS", "1")
        Trainer.resume(tmp_path / "run", epochs=3, progress=False).fit()
    assert ("note: the run was trained with 2 threads and 1 BLAS thread(s), this process has 1 and 1: the ops "
            "cut their work by the thread count") in capsys.readouterr().out


def test_resume_removes_stale_temp_files_of_the_run(tmp_path, capsys):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    stale = tmp_path / "run" / ".checkpoint.npz.k9x2_abc.tmp"
    stale.write_bytes(bytes(2_000_000))
    Trainer.resume(tmp_path / "run", epochs=2, progress=False)
    assert not stale.exists()
    assert "removed 1 stale temporary file (2.0 MB) that an interrupted save left in" in capsys.readouterr().out


def test_an_edited_config_json_is_named_kept_as_a_record_and_rewritten(tmp_path, capsys):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    path = tmp_path / "run" / "config.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "lr": 5, "batch_size": "many"}))
    resumed = Trainer.resume(tmp_path / "run", epochs=2, progress=False)
    resumed.fit()
    out = capsys.readouterr().out
    assert "config.json was edited (batch_size: 'many', lr: 5); it is only a record of the settings, not read" in out
    assert json.loads(path.read_text()) == {**record, "epochs": 2}
    path.write_text("{ nonsense")
    Trainer.resume(tmp_path / "run", epochs=3, progress=False).fit()
    assert "config.json is not valid JSON" in capsys.readouterr().out
    assert json.loads(path.read_text())["epochs"] == 3


# ----------------------------------------------------------------------------- hand-edited checkpoints
def edit_meta(path, edit):
    """Rewrite the checkpoint at ``path`` with ``edit(meta)`` applied to its metadata."""
    ckpt = load_checkpoint(path)
    edit(ckpt["meta"])
    save_checkpoint(ckpt["path"], ckpt["model"], ckpt["optimizer"], ckpt["meta"])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    with blas_threads(1):
        out = tmp_path_factory.mktemp("finished")
        Trainer(tiny(out, epochs=1, grouped=False, max_batches=1), progress=False).fit()
    return out / "run" / "checkpoint.npz"


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.pop("data"), r"its metadata has no data record"),
    (lambda m: m["model"].pop("num_classes"), r"model.num_classes must be an integer >= 1, got None"),
    (lambda m: m["model"].update(num_classes="10"), r"model.num_classes must be an integer >= 1, got '10'"),
    (lambda m: m["model"].update(num_classes=10 ** 9), r"model.num_classes is 1000000000, but data.classes lists 10"),
    (lambda m: m["model"].update(hidden=10 ** 9), r"model.hidden is 1000000000, but the stored fc6 weights"),
    (lambda m: m["model"].update(widths=[8, "a", 8, 8, 8]), r"model.widths must be a list of 5 positive integers"),
    (lambda m: m["model"].update(variant="resnet"), r"model.variant must be one of"),
    (lambda m: m["data"]["spec"].update(size=10 ** 6), r"data.spec.size is 1000000; a mini net on digits uses 28"),
    (lambda m: m["data"].update(classes="0123456789"), r"data.classes must be a list of class names, got str"),
    (lambda m: m.update(train=[]), r"train must be a JSON object, got list"),
])
def test_hand_edited_metadata_is_one_clear_error_before_building(tmp_path, finished_run, edit, message):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(finished_run.read_bytes())
    edit_meta(path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_weights_of_another_variant_name_every_mismatched_layer(tmp_path, finished_run):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(finished_run.read_bytes())
    edit_meta(path, lambda m: m["model"].update(grouped=True))      # trained with --no-groups
    with pytest.raises(CheckpointError, match=r"do not fit a mini AlexNet \(features\.4\.weight: expected shape "
                                              r".*; features\.10\.weight: .*; features\.12\.weight: expected shape"):
        load_model(path)


@pytest.mark.parametrize("edit,error,message", [
    (lambda m: m.update(epoch="1"), CheckpointError, r"epoch must be an integer >= 0, got '1'"),
    (lambda m: m.pop("partial"), CheckpointError, r"its metadata has no partial record"),
    (lambda m: m["train"].update(lr="fast"), ConfigError, r"--lr must be a number, got 'fast'"),
    (lambda m: m["train"].update(tempo=3), ConfigError, r"unknown settings \['tempo'\]"),
    (lambda m: m["scheduler"].update(scale="x", nonsense=1), CheckpointError, r"schedule state does not fit"),
    (lambda m: m["scheduler"].update(step_size="2"), CheckpointError, r"schedule state does not fit .*step_size = '2'"),
    # the per-epoch records, which the epoch line, metrics.jsonl and curves.png read at the end of the resumed run
    (lambda m: m["history"][0].pop("train_loss"), CheckpointError, r"history\[0\]\.train_loss must be a number, got None"),
    (lambda m: m["history"][0].update(test_top1_error="2%"), CheckpointError,
     r"history\[0\]\.test_top1_error must be a number or null, got '2%'"),
    (lambda m: m["history"][0].update(epoch=7), CheckpointError, r"history\[0\]\.epoch must be 1, got 7"),
    (lambda m: m["history"].append(dict(m["history"][0], epoch=2)), CheckpointError,
     r"history holds 2 per-epoch records, but the run has finished 1 epochs"),
    (lambda m: m["history"][0].update(final_test=0.02), CheckpointError, r"history\[0\]\.final_test must be a JSON object"),
    (lambda m: m["history"][0].update(final_test={"views": "three-crop", "images": 10, "top1_error": 0.1}),
     CheckpointError, r"history\[0\]\.final_test\.views must be five-crop or ten-crop, got 'three-crop'"),
    (lambda m: m["history"][0].update(final_test={"views": "five-crop", "images": 10, "top1_error": None}),
     CheckpointError, r"history\[0\]\.final_test\.top1_error must be a number, got None"),
])
def test_hand_edited_training_state_is_one_clear_error_on_resume(tmp_path, finished_run, edit, error, message):
    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / "checkpoint.npz"
    path.write_bytes(finished_run.read_bytes())
    edit_meta(path, edit)
    with pytest.raises(error, match=message):
        Trainer.resume(path, epochs=2, progress=False)


# ----------------------------------------------------------------------------- ImageFolder data that cannot train
def image_tree(root, classes, bad=()):
    Image = pytest.importorskip("PIL.Image")
    for split in ("train", "val"):
        for name in classes[split]:
            (root / split / name).mkdir(parents=True)
            for k in range(2):
                path = root / split / name / f"{k}.png"
                if (split, name) in bad:
                    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
                else:
                    Image.new("RGB", (40, 40), (100 * k, 50, 0)).save(path)
    return root


def test_imagefolder_data_that_cannot_train_is_an_error_before_training(tmp_path):
    from minialex.data import DatasetError
    both = {"train": ["cat", "dog"], "val": ["cat", "dog"]}
    folder = image_tree(tmp_path / "unreadable", both, bad={("train", "cat"), ("train", "dog")})
    with pytest.raises(DatasetError, match=r"class directory .*train/cat: none of its 2 image files can be decoded"):
        Trainer(tiny(tmp_path, dataset="imagefolder", data_path=str(folder)), progress=False)
    folder = image_tree(tmp_path / "single", {"train": ["cat"], "val": ["cat"]})
    with pytest.raises(DatasetError, match=r"single has a single class \('cat'\): a classifier needs at least two"):
        Trainer(tiny(tmp_path, dataset="imagefolder", data_path=str(folder)), progress=False)
    folder = image_tree(tmp_path / "differ", {"train": ["cat", "dog"], "val": ["cat", "dgo"]})
    with pytest.raises(ConfigError, match=r"different classes: only in train: 'dog'; only in test: 'dgo'"):
        Trainer(tiny(tmp_path, dataset="imagefolder", data_path=str(folder)), progress=False)
    assert not (tmp_path / "run").exists()


class NaNAtOnce(Trainer):
    def train_step(self, x, y):
        self.model.layer("fc8").bias.data[:] = np.nan
        return super().train_step(x, y)


def test_config_json_agrees_with_the_checkpoint_after_a_failed_resume(tmp_path, capsys):
    Trainer(tiny(tmp_path, epochs=1), progress=False).fit()
    with pytest.raises(NonFiniteLossError):
        NaNAtOnce.resume(tmp_path / "run", epochs=3, progress=False).fit()     # stops before any save
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 1
    capsys.readouterr()
    Trainer.resume(tmp_path / "run", epochs=2, progress=False).fit()
    assert "was edited" not in capsys.readouterr().out

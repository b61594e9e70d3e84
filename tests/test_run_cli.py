"""The command line: two processes with one config and seed write byte-identical metrics; bad
configs name the key and line and leave nothing behind; show, compare, resume; shipped configs."""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import fnn
from fnn.run import cli
from fnn.run.config import ConfigError, build

CONFIG = """\
description = "tiny digits MLP"
seed = 3
epochs = 3
batch_size = 64
loss = "sparse_softmax_cross_entropy"
metrics = ["accuracy"]
validation_split = 0.25

[data]
name = "digits"

[[model.layers]]
type = "Dense"
features = 8

[[model.layers]]
type = "Dropout"
rate = 0.1

[[model.layers]]
type = "Dense"
features = 10

[optimizer]
name = "adam"
learning_rate = 0.01

[early_stopping]
monitor = "val_loss"
patience = 3
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The tiny config trained by `python -m fnn train` in two separate processes."""
    base = tmp_path_factory.mktemp("cli")
    config = base / "tiny.toml"
    config.write_text(CONFIG)
    dirs = []
    for name in ("a", "b"):
        out = subprocess.run([sys.executable, "-m", "fnn", "train", str(config), "--run-dir",
                              str(base / name)], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "JAX_PLATFORMS": "cpu"})
        assert out.returncode == 0, out.stderr[-2000:]
        dirs.append(base / name)
    return config, dirs


def test_two_processes_write_byte_identical_metrics_and_weights(two_runs):
    _, (a, b) = two_runs
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    lines = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1, 2]
    assert set(lines[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    last = [fnn.checkpoint.load(sorted(glob.glob(str(d / "checkpoints" / "*")))[-1])
            for d in (a, b)]
    for x, y in zip(jax.tree.leaves(last[0]["params"]), jax.tree.leaves(last[1]["params"])):
        np.testing.assert_array_equal(x, y)
    plots = ["curves.png"] if importlib.util.find_spec("matplotlib") else []   # an extra
    assert sorted(os.listdir(a)) == sorted(["checkpoints", "config.toml", "metrics.jsonl",
                                            "record.json"] + plots)
    info = json.loads((a / "record.json").read_text())
    assert info["seed"] == 3 and info["environment"]["backend"] == "cpu"
    assert {"fnn", "jax", "jaxlib", "numpy", "xla_flags", "git"} <= set(info["environment"])
    assert info["sessions"][0]["epochs"] == 3 and info["sessions"][0]["wall_seconds"] > 0


def test_show_and_compare(two_runs, capsys):
    _, (a, b) = two_runs
    assert cli.main(["show", str(a)]) == 0
    shown = capsys.readouterr().out
    assert "seed       3" in shown and "val_accuracy" in shown and "epochs     3" in shown
    assert cli.main(["compare", str(a), str(b)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["run", "a", "b"]
    val_loss = next(line.split() for line in table if line.startswith("val_loss"))
    assert val_loss[1] == val_loss[2]


def test_tensorboard_event_files_hold_every_epoch(tmp_path):
    from fnn.run.tensorboard import read_scalars
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.replace("epochs = 3", "epochs = 2") + "\n[monitor]\nevery = 2\n")
    assert cli.main(["train", str(config), "--run-dir", str(tmp_path / "run"),
                     "--tensorboard", "--no-progress"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
             .splitlines()]
    (train,), (validation,) = (glob.glob(str(tmp_path / "run" / "tensorboard" / part / "*"))
                               for part in ("train", "validation"))
    scalars = read_scalars(train) + read_scalars(validation)      # CRCs checked
    expected = [(name.removeprefix("val_"), line["epoch"], value) for line in lines
                for name, value in line.items() if name != "epoch"]
    assert sorted((t, s) for t, s, _ in scalars) == sorted((t, s) for t, s, _ in expected)
    train_values = {(t, s): v for t, s, v in read_scalars(train)}
    val_values = {(t, s): v for t, s, v in read_scalars(validation)}
    for line in lines:                      # float32 in the event files
        assert train_values[("loss", line["epoch"])] == pytest.approx(line["loss"], rel=1e-6)
        assert val_values[("loss", line["epoch"])] == pytest.approx(line["val_loss"], rel=1e-6)
        assert train_values[("grad_norm/0", line["epoch"])] == pytest.approx(   # [monitor]
            line["grad_norm/0"], rel=1e-6)


def test_an_interrupted_cli_run_resumes_to_the_same_bytes(two_runs, tmp_path, monkeypatch):
    """Interrupted after epoch 1's checkpoint (and after epoch 2's metrics line was written:
    the file runs ahead of the checkpoint), then --resume: metrics.jsonl is cut back to the
    checkpoint and continued, byte for byte the uninterrupted run's."""
    config, (a, _) = two_runs
    save = fnn.checkpoint.Manager.save

    def interrupting(self, epoch, tree, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return save(self, epoch, tree, **kwargs)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(fnn.checkpoint.Manager, "save", interrupting)
        with pytest.raises(KeyboardInterrupt):
            cli.main(["train", str(config), "--run-dir", str(run), "--no-progress"])
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert cli.main(["train", str(config), "--run-dir", str(run), "--resume",
                     "--no-progress"]) == 0
    assert (run / "metrics.jsonl").read_bytes() == (a / "metrics.jsonl").read_bytes()
    sessions = json.loads((run / "record.json").read_text())["sessions"]
    assert [s.get("resumed_from_epoch") for s in sessions] == [None, 1]
    assert "finished" not in sessions[0] and sessions[1]["epochs"] == 3


def test_resume_continues_a_run_directory_and_refuses_another_config(two_runs, tmp_path,
                                                                       capsys):
    config, (a, _) = two_runs
    before = (a / "metrics.jsonl").read_bytes()
    assert cli.main(["train", str(config), "--run-dir", str(a), "--resume",
                     "--no-progress"]) == 0                  # finished: nothing more to do
    assert (a / "metrics.jsonl").read_bytes() == before
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.replace("seed = 3", "seed = 4"))
    assert cli.main(["train", str(other), "--run-dir", str(a), "--resume"]) == 2
    assert "differs from the config the run" in capsys.readouterr().err
    assert cli.main(["train", str(config), "--run-dir", str(a)]) == 2
    assert "is not empty; pass --resume" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (("seed = 3", "seed = 3\nlearning_rate = 0.1"),
     "learning_rate (line 3): unknown key; allowed: batch_size, data, description"),
    (('type = "Dropout"', 'type = "Dropuot"'),
     "model.layers.type (line 17): layer 1: unknown layer 'Dropuot'; one of: Activation"),
    (("rate = 0.1", "rat = 0.1"), "model.layers.rat (line 18): layer 1 (Dropout) takes no "
                                  "argument 'rat'; it takes: rate"),
    (('name = "adam"', 'name = "adamm"'),
     "optimizer.name (line 25): unknown optimizer 'adamm'; one of: sgd, momentum"),
    (("learning_rate = 0.01", "lr = 0.01"),
     "optimizer.lr (line 26): adam takes no argument 'lr'; it takes: learning_rate, b1"),
    (("epochs = 3", "epochs = 0"), "epochs (line 3): must be >= 1, got 0"),
    (("batch_size = 64", 'batch_size = "64"'), "batch_size (line 4): must be an integer"),
    (('name = "digits"', 'name = "mnist"'),
     "data.name (line 10): unknown dataset 'mnist'; one of: digits, breast_cancer, diabetes"),
    (('loss = "sparse_softmax_cross_entropy"', 'loss = "crossentropy"'),
     "loss (line 5): losses.get: unknown loss 'crossentropy'"),
    (("seed = 3\n", ""), "seed: missing"),
    (("patience = 3", "patience = 3\n[monitor]\nevry = 2"),
     "monitor.evry (line 32): Monitor.__init__() got an unexpected keyword argument 'evry'"),
])
def test_bad_configs_name_the_key_and_line_and_write_nothing(tmp_path, capsys, change, message):
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.replace(*change, 1))
    assert cli.main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "run").exists()


def test_a_config_that_fails_in_fit_leaves_no_run_directory(tmp_path, capsys):
    config = tmp_path / "wide.toml"
    config.write_text(CONFIG.replace("batch_size = 64", "batch_size = 5000"))
    assert cli.main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(
    os.path.dirname(__file__), "..", "examples", "configs", "*.toml"))))
def test_shipped_configs_build(path):
    experiment = build(path)
    x, y = experiment.data
    assert len(x) == len(y) and experiment.validation_data is not None
    params, _ = experiment.model.init(jax.random.key(0), x[:1])
    assert jax.tree.leaves(params)


def test_a_toml_syntax_error_is_a_config_error(tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("seed = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build(str(config))

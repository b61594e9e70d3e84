"""`fnn tune CONFIG.toml --run-dir DIR`: search spaces checked key by key, the study in
DIR/study.db continued by a second run, a runnable best.toml, `fnn show` of a study."""

import tomllib

import pytest

from fnn.run import cli
from fnn.run.config import build

pytest.importorskip("optuna")

CONFIG = """\
seed = 1
epochs = 2
batch_size = {choice = [32, 64]}
loss = "sparse_softmax_cross_entropy"
metrics = ["accuracy"]
validation_split = 0.25

[data]
name = "digits"

[model]
units = {choice = [[8], [8, 8]]}
activation = {choice = ["relu", "tanh"]}
outputs = 10

[optimizer]
name = "adam"
learning_rate = {log_uniform = [1e-3, 1e-1]}

[tune]
trials = 3
sampler = "random"
"""


def test_a_study_from_a_config_continues_and_writes_a_runnable_best_config(tmp_path, capsys):
    config = tmp_path / "space.toml"
    config.write_text(CONFIG)
    run = tmp_path / "study"
    assert cli.main(["tune", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "model.units" in out
    assert {p.name for p in run.iterdir()} == {"config.toml", "study.db", "best.toml",
                                              "record.json"}
    assert cli.main(["tune", str(config), "--run-dir", str(run), "--trials", "4",
                     "--no-progress"]) == 0              # the same study, one trial more
    import optuna
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{run / 'study.db'}")
    assert len(study.trials) == 4
    best = tomllib.loads((run / "best.toml").read_text())
    assert "tune" not in best and best["model"]["units"] in ([8], [8, 8])
    assert best["batch_size"] in (32, 64) and 1e-3 <= best["optimizer"]["learning_rate"] <= 0.1
    build(str(run / "best.toml"))                        # a config fnn train accepts
    capsys.readouterr()
    assert cli.main(["show", str(run)]) == 0
    shown = capsys.readouterr().out
    assert "study      space" in shown and "best trials:" in shown


@pytest.mark.parametrize("change, message", [
    (("learning_rate = {log_uniform = [1e-3, 1e-1]}", "learning_rate = {log_uniform = [0, 1]}"),
     "optimizer.learning_rate (line 18): log_uniform needs low > 0"),
    (("epochs = 2", "epochs = {int = [1, 3]}"),
     "epochs (line 2): epochs is the same for every trial and takes no search space"),
    (("units = {choice = [[8], [8, 8]]}", "units = {choice = []}"),
     "model.units (line 12): choice must be a non-empty list"),
    (('activation = {choice = ["relu", "tanh"]}', 'activation = {choice = ["relu", "tahn"]}'),
     None),
    (("trials = 3", "trials = 0"), "tune.trials (line 21): must be >= 1"),
    (('sampler = "random"', 'sampler = "grid"'), "tune.sampler (line 22): unknown sampler"),
])
def test_bad_search_spaces_name_the_key_and_line(tmp_path, capsys, change, message):
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.replace(*change, 1))
    status = cli.main(["tune", str(config), "--run-dir", str(tmp_path / "run"),
                       "--no-progress"])
    err = capsys.readouterr().err
    if message is None:      # a bad value inside a choice: those trials fail, the rest run
        assert status == 0, err
        return
    assert status == 2 and message in err, err
    assert not (tmp_path / "run").exists()


def test_fnn_train_refuses_a_config_with_a_search_space(tmp_path, capsys):
    config = tmp_path / "space.toml"
    config.write_text(CONFIG)
    assert cli.main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "batch_size (line 3): is a search space; run this config with `fnn tune`" in (
        capsys.readouterr().err)


def test_the_shipped_tuning_config_checks():
    import pathlib

    from fnn.run.config import Checker, parse
    from fnn.tuning import space
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "tune" / (
        "digits_mlp_tune.toml")
    config, text = parse(str(path))
    spaces = space.find(config)
    space.check(spaces, Checker(str(path), text).fail)
    assert {space.name(p) for p in spaces} == {"model.units", "model.activation",
                                               "optimizer.learning_rate",
                                               "optimizer.weight_decay"}
    build(str(path), space.resolve(config, spaces, lambda p, s: space.first(s)), text,
          load_data=False)

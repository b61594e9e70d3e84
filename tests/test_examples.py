"""The example scripts run end to end (tiny settings) and print readable results."""

import importlib.util
import pathlib
import re

import numpy as np
import pytest

pytest.importorskip("sklearn")

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
MINE = ("digits_mlp", "breast_cancer_logreg", "regression_mse", "kfold_cross_validation",
        "edge_detection", "digits_cnn", "digits_multitask", "sequence_sign",
        "reverse_transformer", "char_lm", "explain_digits", "vanishing_gradients")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_a_script_with_a_main_guard():
    for name in MINE:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert 'if __name__ == "__main__":' in text and "argparse" in text, name


def test_digits_mlp_runs_and_prints(capsys):
    result = load("digits_mlp").main(["--epochs", "2", "--hidden", "16", "--no-progress"])
    out = capsys.readouterr().out
    for text in ("train /", "test accuracy", "macro precision", "confusion matrix", "time:"):
        assert text in out
    assert result["epochs"] == 2 and 0.0 <= result["test_accuracy"] <= 1.0
    confusion = result["confusion_matrix"]
    assert confusion.shape == (10, 10) and confusion.sum() == 270      # 15% of 1797
    assert np.isclose(np.trace(confusion) / confusion.sum(), result["test_accuracy"], atol=1e-6)


def test_digits_mlp_default_settings_reach_96_percent(capsys):
    # The README's claim, with the script's own defaults (seed 0; about 5-15 s here).
    result = load("digits_mlp").main(["--no-progress"])
    assert result["test_accuracy"] >= 0.96, capsys.readouterr().out
    assert result["f1"] >= 0.95


def test_breast_cancer_logreg_runs_and_prints(capsys):
    result = load("breast_cancer_logreg").main(["--epochs", "2", "--no-progress"])
    out = capsys.readouterr().out
    for text in ("test loss", "majority class", "precision", "recall", "F1", "time:"):
        assert text in out
    assert 0.0 <= result["test_accuracy"] <= 1.0 and 0.5 < result["baseline_accuracy"] < 0.7


def test_breast_cancer_logreg_beats_the_majority_baseline(capsys):
    result = load("breast_cancer_logreg").main(["--epochs", "50", "--no-progress"])
    assert result["test_accuracy"] > 0.9 > result["baseline_accuracy"]


def test_regression_mse_runs_and_beats_the_mean_baseline(capsys):
    result = load("regression_mse").main(["--epochs", "30", "--no-progress"])
    out = capsys.readouterr().out
    for text in ("test MSE", "baseline", "MAE", "time:"):
        assert text in out
    assert result["mse"] < result["baseline_mse"] and result["mae"] < result["baseline_mae"]


def test_kfold_cross_validation_runs_and_reports_mean_and_std(capsys):
    result = load("kfold_cross_validation").main(["--folds", "3", "--epochs", "2"])
    out = capsys.readouterr().out
    assert len(re.findall(r"^fold \d: .* accuracy 0\.\d{4}$", out, re.MULTILINE)) == 3
    assert "+-" in out and "time:" in out
    scores = result["fold_accuracies"]
    assert len(scores) == 3
    assert np.isclose(result["mean_accuracy"], np.mean(scores))
    assert np.isclose(result["std_accuracy"], np.std(scores))


def test_edge_detection_prints_the_notes_four_by_four_maps(capsys):
    results = load("edge_detection").main([])
    out = capsys.readouterr().out
    assert "vertical-edge filter -> 4x4 output" in out and "[ 0 -4 -4  0]" in out
    edge = np.array([0., -4., -4., 0.])
    first, second = results.values()
    np.testing.assert_array_equal(first["vertical"], np.tile(edge, (4, 1)))
    np.testing.assert_array_equal(first["horizontal"], np.zeros((4, 4)))
    np.testing.assert_array_equal(second["horizontal"], np.tile(edge[:, None], (1, 4)))


def test_digits_cnn_runs_prints_and_draws(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    picture = tmp_path / "cnn.png"
    result = load("digits_cnn").main(["--epochs", "2", "--filters", "4", "8", "--no-progress",
                                      "--plot", str(picture)])
    out = capsys.readouterr().out
    for text in ("Conv2D", "MaxPool2D", "test accuracy", "confusion matrix", "drawn in"):
        assert text in out
    assert result["epochs"] == 2 and result["confusion_matrix"].sum() == 270
    assert picture.stat().st_size > 1000


def test_digits_multitask_trains_two_heads_and_batch_norm_state(capsys):
    result = load("digits_multitask").main(["--epochs", "2", "--filters", "4", "--no-progress"])
    out = capsys.readouterr().out
    for text in ("digit accuracy", "parity accuracy", "BatchNorm running mean"):
        assert text in out
    h = result["history"]
    assert result["epochs"] == 2 and {"digit_loss", "parity_loss", "val_digit_accuracy",
                                      "val_parity_accuracy"} <= set(h)
    np.testing.assert_allclose(h["loss"], np.add(h["digit_loss"], 0.5 * np.asarray(
        h["parity_loss"])), rtol=1e-5)
    assert 0.0 <= result["digit_accuracy"] <= 1.0 and 0.0 <= result["parity_accuracy"] <= 1.0


def test_sequence_sign_learns_with_the_mask(capsys):
    result = load("sequence_sign").main(["--examples", "600", "--epochs", "6", "--hidden", "8",
                                         "--no-progress"])
    out = capsys.readouterr().out
    assert "test accuracy" in out and "without the mask" in out
    assert result["accuracy"] > 0.6 and result["epochs"] <= 6


def test_reverse_transformer_trains_and_decodes_greedily(capsys):
    result = load("reverse_transformer").main([
        "--train-examples", "256", "--test-examples", "16", "--max-length", "4", "--width", "16",
        "--heads", "2", "--blocks", "1", "--epochs", "2", "--batch-size", "64", "--no-progress"])
    out = capsys.readouterr().out
    assert "held-out exact match (greedy decoding)" in out and " -> " in out
    assert 0.0 <= result["exact_match"] <= 1.0 and len(result["history"]["loss"]) == 2


def test_reverse_transformer_helpers():
    module = load("reverse_transformer")
    source, mask, target, target_in = module.encode(["120", "7"], 4)
    d = module.FIRST_DIGIT
    assert source.tolist() == [[d + 1, d + 2, d, 0], [d + 7, 0, 0, 0]]
    assert target.tolist() == [[d, d + 2, d + 1, module.END, 0], [d + 7, module.END, 0, 0, 0]]
    assert target_in[:, 0].tolist() == [module.START] * 2 and mask.sum() == 4
    wrong_after_end = target.copy()
    wrong_after_end[:, -1] = 9                          # after END: does not count
    assert module.exact_matches(wrong_after_end, target).tolist() == [True, True]
    assert module.exact_matches(np.zeros_like(target), target).tolist() == [False, False]


def test_char_lm_trains_and_samples(capsys):
    result = load("char_lm").main(["--window", "16", "--stride", "256", "--hidden", "16",
                                   "--epochs", "1", "--sample-chars", "20", "--no-progress"])
    out = capsys.readouterr().out
    assert "bits per character" in out and "sample (temperature" in out
    assert 0 < result["val_bits_per_char"] < 8


def test_explain_digits_attributions_add_up_and_point_at_used_pixels(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    picture = tmp_path / "explain.png"
    result = load("explain_digits").main(["--epochs", "8", "--digits", "3", "--no-progress",
                                          "--plot", str(picture)])
    out = capsys.readouterr().out
    for text in ("test accuracy", "sum(IG)", "delta", "drawn in"):
        assert text in out
    assert picture.stat().st_size > 0
    # completeness: the attributions sum to S(x) - S(black) up to the reported delta
    np.testing.assert_allclose(result["ig"].sum(axis=(1, 2, 3)) - result["score_change"],
                               result["delta"], atol=1e-3)
    assert np.all(np.abs(result["delta"]) < 0.05 * np.abs(result["score_change"]) + 0.05)
    assert np.mean(result["drops"][:, 0]) > np.mean(result["drops"][:, 1])


def test_vanishing_gradients_are_diagnosed_for_sigmoid_not_relu(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    picture = tmp_path / "vanishing.png"
    result = load("vanishing_gradients").main(["--epochs", "4", "--no-progress",
                                               "--plot", str(picture)])
    out = capsys.readouterr().out
    assert "vanishing_gradients" in out and "drawn in" in out
    assert "vanishing_gradients" in result["sigmoid"]["kinds"]
    assert "vanishing_gradients" not in result["relu"]["kinds"]
    sigmoid, relu = result["sigmoid"]["norms"], result["relu"]["norms"]
    assert sigmoid["0"] < 1e-4 * sigmoid["20"] and relu["0"] > 0.1 * relu["20"]

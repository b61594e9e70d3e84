"""examples/gradient_descent_by_hand.py: the notes' worked step and a hand-written training loop."""

import importlib.util
import math
import pathlib

import pytest

pytest.importorskip("sklearn")

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "gradient_descent_by_hand.py"


def _example():
    spec = importlib.util.spec_from_file_location("example_gradient_descent_by_hand", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worked_example_and_training_by_hand(capsys):
    result = _example().main(["--epochs", "30"])
    # The notes' numbers, recomputed here from their formulas in plain Python.
    z = 5 * 0.02 + 3 * 0.09 + 0.01
    a = 1 / (1 + math.exp(-z))
    expected = {"z": z, "y_hat": a, "loss": -math.log(a), "dw1": (a - 1) * 5, "dw2": (a - 1) * 3,
                "db": a - 1, "w1_new": 0.02 - 0.005 * (a - 1) * 5}
    for name, value in expected.items():
        assert result["worked_example"][name] == pytest.approx(value, rel=1e-5), name
    assert result["worked_example"]["y_hat"] == pytest.approx(0.5939, abs=1e-4)   # as printed in the notes
    assert result["worked_example"]["dw2"] == pytest.approx(-1.218, abs=1e-3)
    assert result["cost"] < 0.2 and result["test_accuracy"] > 0.9
    out = capsys.readouterr().out
    assert "the notes' worked example" in out and "test accuracy" in out

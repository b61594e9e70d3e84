"""What a user sees: at 80 columns (a real pseudo-terminal) every number of the epoch is
visible, the first epoch shows as compiling, early stopping says why and which epoch's
weights came back; verbose=2 prints a line per epoch, verbose=0 nothing."""

import os
import pty
import re
import select
import struct
import subprocess
import sys

import pytest

import fnn

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "progress_check.py")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_in_terminal(verbose: int, columns: int = 80) -> str:
    """The script's output, written to a pseudo-terminal of ``columns`` x 24."""
    import fcntl
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    child = subprocess.Popen([sys.executable, SCRIPT, str(verbose)], stdin=slave, stdout=slave,
                             stderr=slave, close_fds=True,
                             env={**os.environ, "JAX_PLATFORMS": "cpu"})
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        elif child.poll() is not None:
            break
    child.wait(timeout=120)
    os.close(master)
    assert child.returncode == 0, out.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


def screen_lines(text: str) -> list[str]:
    """Every line and every redraw of one, without terminal escape sequences."""
    return [part for line in ANSI.sub("", text).split("\n") for part in line.split("\r")]


@pytest.fixture(scope="module")
def bar_output():
    return run_in_terminal(1)


def test_every_number_is_visible_at_80_columns(bar_output):
    lines = screen_lines(bar_output)
    assert max(len(line.rstrip()) for line in lines) <= 80
    numbers = [line for line in lines if line.startswith("loss ")]
    assert numbers, bar_output
    last = numbers[-1]
    for label in ("loss ", "acc ", "val_loss ", "val_acc ", "lr "):
        assert label in last, last


def test_compiling_shows_first_and_early_stopping_says_why(bar_output):
    text = " ".join(" ".join(screen_lines(bar_output)).split())   # whitespace normalised
    assert "epoch 1/30: compiling and running the first epoch" in text
    assert re.search(r"fit: stopped early after epoch (\d+) of 30: val_loss did not improve "
                     r"for 3 epochs; restored the weights of epoch (\d+) \(best val_loss", text)
    stopped, restored = map(int, re.search(r"after epoch (\d+) of 30.*weights of epoch (\d+)",
                                           text).groups())
    assert restored == stopped - 3
    assert re.search(rf"{stopped}/30 \[", text)          # the bar ends where training ended


def test_verbose_2_prints_a_line_per_epoch_and_0_nothing():
    lines = [line for line in screen_lines(run_in_terminal(2)) if line.strip()]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert epochs[0].startswith("epoch 1/30  ") and "val_acc" in epochs[0]
    assert lines[-1].startswith("fit: stopped early after epoch ")
    assert len(epochs) == int(re.search(r"after epoch (\d+)", lines[-1]).group(1))
    assert "compiling" not in " ".join(lines)          # lines mode: no bar, no status
    assert run_in_terminal(0).strip() == ""


def test_verbose_must_be_0_1_or_2():
    with pytest.raises(ValueError, match=r"verbose must be 0 \(silent\), 1"):
        fnn.train.progress.resolve_verbose("fit", 3, True)


def test_evaluate_and_predict_show_a_bar_over_the_examples_with_the_same_numbers(monkeypatch):
    import io

    import jax
    import numpy as np

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    model = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dense(2)])
    params, state = model.init(jax.random.key(0), x)
    options = dict(loss="sparse_softmax_cross_entropy", metrics=["accuracy"], batch_size=32)
    plain = fnn.evaluate(model, params, state, (x, y), **options)
    plain_outputs = fnn.predict(model, params, state, x, batch_size=32)
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert fnn.evaluate(model, params, state, (x, y), verbose=1, **options) == plain
    np.testing.assert_array_equal(fnn.predict(model, params, state, x, batch_size=32,
                                              verbose=1), plain_outputs)
    assert re.search(r"evaluate: .*\d+/500", err.getvalue()) and "predict" in err.getvalue()
    with pytest.raises(ValueError, match="verbose must be 0 or 1"):
        fnn.predict(model, params, state, x, verbose=2)

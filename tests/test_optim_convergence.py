"""Every named optimizer converges on an ill-conditioned quadratic and on Rosenbrock.

One jitted program per optimizer runs both problems, each a ``lax.scan``.
Learning rates and step counts are per optimizer (AdaDelta and Lion are slow
or jittery on Rosenbrock); the tolerance is on the distance to the minimum.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim

CURVATURE = jnp.array([1.0, 10.0])
QUADRATIC_MINIMUM = np.array([1.0, -2.0])
ROSENBROCK_START = jnp.array([-1.2, 1.0])


def quadratic(x):
    return 0.5 * jnp.sum(CURVATURE * (x - QUADRATIC_MINIMUM) ** 2)


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def minimize(opt, loss, x0, steps):
    def body(carry, _):
        x, state = carry
        updates, state = opt.update(jax.grad(loss)(x), state, x)
        return (optim.apply_updates(x, updates), state), None

    (x, _), _ = jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)
    return x


# name: (quadratic optimizer, steps, rosenbrock optimizer, steps, rosenbrock tolerance)
CONFIGS = {
    "sgd": (lambda: optim.sgd(0.15), 200, lambda: optim.sgd(2e-3), 20000, 1e-2),
    "momentum": (lambda: optim.momentum(0.1, 0.9), 300, lambda: optim.momentum(1e-2, 0.9), 10000, 1e-3),
    "nesterov": (lambda: optim.momentum(0.1, 0.9, nesterov=True), 300,
                 lambda: optim.momentum(1e-2, 0.9, nesterov=True), 10000, 1e-3),
    "rmsprop": (lambda: optim.rmsprop(0.01), 1000, lambda: optim.rmsprop(1e-3), 10000, 1e-2),
    "adagrad": (lambda: optim.adagrad(0.5), 500, lambda: optim.adagrad(0.5), 10000, 1e-2),
    "adadelta": (lambda: optim.adadelta(1.0, eps=1e-4), 1000,
                 lambda: optim.adadelta(0.05, rho=0.9, eps=1e-6), 10000, 2e-2),
    "adam": (lambda: optim.adam(0.05), 1000, lambda: optim.adam(0.01), 10000, 1e-3),
    "adamw": (lambda: optim.adamw(0.05, weight_decay=1e-4), 1000,
              lambda: optim.adamw(0.01, weight_decay=1e-5), 10000, 1e-2),
    "nadam": (lambda: optim.nadam(0.05), 1000, lambda: optim.nadam(0.01), 10000, 1e-2),
    "lion": (lambda: optim.lion(optim.schedules.cosine_decay(0.02, 1000)), 1000,
             lambda: optim.lion(optim.schedules.cosine_decay(3e-3, 10000)), 10000, 1e-3),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_converges_on_quadratic_and_rosenbrock(name):
    make_q, steps_q, make_r, steps_r, tolerance = CONFIGS[name]

    @jax.jit
    def both():
        return (minimize(make_q(), quadratic, jnp.zeros(2), steps_q),
                minimize(make_r(), rosenbrock, ROSENBROCK_START, steps_r))

    x_quadratic, x_rosenbrock = both()
    assert np.max(np.abs(np.asarray(x_quadratic) - QUADRATIC_MINIMUM)) < 1e-3
    assert np.max(np.abs(np.asarray(x_rosenbrock) - 1.0)) < tolerance
    assert float(rosenbrock(x_rosenbrock)) < 1e-3 * float(rosenbrock(ROSENBROCK_START))


def test_optimizer_paths_example_draws_every_optimizer(tmp_path, monkeypatch, capsys):
    """examples/optimizer_paths.py (the docs' comparison plot) runs and writes its figure."""
    pytest.importorskip("matplotlib")
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "optimizer_paths.py"
    spec = importlib.util.spec_from_file_location("example_optimizer_paths", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr(example, "OUT", str(tmp_path / "paths.png"))
    example.main()
    out = capsys.readouterr().out
    assert (tmp_path / "paths.png").stat().st_size > 10_000
    for loss, minimum, start, steps, _, _, optimizers in example.SURFACES.values():
        assert set(optimizers) == set(CONFIGS) - {"adamw"}  # every optimizer, adamw aside
        path = np.asarray(example.optimize(loss, optimizers["adam"], start, steps))
        assert path.shape == (steps + 1, 2) and np.allclose(path[0], start)
        assert float(loss(path[-1])) < 0.1 * float(loss(path[0]))  # Adam goes downhill
    assert out.count("eta=") == 18

"""Paths of fnn's optimizers on two 2-D loss surfaces, drawn over their contours.

Left: an elongated quadratic bowl, the picture behind momentum and RMSProp in
the lecture notes (gradient descent zig-zags across the steep direction; the
exponentially weighted average damps the zig-zag; RMSProp/Adam rescale each
coordinate). Right: the Rosenbrock valley ``(1 - x)^2 + 100 (y - x^2)^2``,
minimum at (1, 1).

Every optimizer runs the same number of steps from the same start; each path
is one ``lax.scan`` over ``opt.update`` + ``fnn.optim.apply_updates``.
Writes ``docs/img/optimizer_paths.png`` and prints the final loss of each.

Run: ``python examples/optimizer_paths.py``
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fnn  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img", "optimizer_paths.png")


def elongated_bowl(p):
    """f(x, y) = x^2 / 20 + 2 y^2: curvature 40x larger along y than along x."""
    return p[0] ** 2 / 20.0 + 2.0 * p[1] ** 2


def rosenbrock(p):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2."""
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


# Each surface: (function, minimum, start, steps, plot box, contour levels, optimizers with
# learning rates picked by hand so each one shows its typical behaviour in that many steps).
SURFACES = {
    "elongated bowl  x²/20 + 2y²": (
        elongated_bowl, (0.0, 0.0), (-9.0, 1.6), 150, ((-10, 2), (-2.2, 2.2)), np.geomspace(0.01, 40, 14),
        {
            "sgd": fnn.optim.sgd(0.45),
            "momentum": fnn.optim.momentum(0.45, beta=0.9),
            "nesterov": fnn.optim.momentum(0.45, beta=0.9, nesterov=True),
            "rmsprop": fnn.optim.rmsprop(0.05),
            "adagrad": fnn.optim.adagrad(0.8),
            "adadelta": fnn.optim.adadelta(1.0),
            "adam": fnn.optim.adam(0.3),
            "nadam": fnn.optim.nadam(0.3),
            "lion": fnn.optim.lion(0.05),
        },
    ),
    "Rosenbrock  (1-x)² + 100(y-x²)²": (
        rosenbrock, (1.0, 1.0), (-1.2, 1.0), 400, ((-1.5, 1.5), (-0.5, 1.7)), np.geomspace(0.03, 300, 15),
        {
            "sgd": fnn.optim.sgd(2e-3),
            "momentum": fnn.optim.momentum(1e-2, beta=0.9),
            "nesterov": fnn.optim.momentum(1e-2, beta=0.9, nesterov=True),
            "rmsprop": fnn.optim.rmsprop(1e-2),
            "adagrad": fnn.optim.adagrad(0.5),
            "adadelta": fnn.optim.adadelta(1.0),
            "adam": fnn.optim.adam(0.05),
            "nadam": fnn.optim.nadam(0.05),
            "lion": fnn.optim.lion(0.01),
        },
    ),
}


def optimize(loss, optimizer, start, steps):
    """The path theta_0, ..., theta_steps of ``optimizer`` on ``loss`` (a (steps + 1, 2) array)."""
    grad = jax.grad(loss)

    def step(carry, _):
        params, opt_state = carry
        updates, opt_state = optimizer.update(grad(params), opt_state, params)
        params = fnn.optim.apply_updates(params, updates)
        return (params, opt_state), params

    params = jnp.asarray(start, jnp.float32)
    _, path = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return jnp.concatenate([params[None], path])


def learning_rate_text(optimizer):
    state = optimizer.init(jnp.zeros(2))
    return f"{float(fnn.optim.current_learning_rate(state)):g}"


def main():
    fig, axes = plt.subplots(1, 2, figsize=(13, 7.2), dpi=90)
    colors = plt.get_cmap("tab10").colors
    for ax, (title, (loss, minimum, start, steps, box, levels, optimizers)) in zip(axes, SURFACES.items()):
        (x0, x1), (y0, y1) = box
        xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        zs = np.asarray(jax.vmap(loss)(jnp.stack([xs.ravel(), ys.ravel()], axis=1))).reshape(xs.shape)
        ax.contour(xs, ys, zs, levels=levels, colors="0.75", linewidths=0.7)
        print(f"{title}: start {start}, {steps} steps, final loss")
        for color, (name, optimizer) in zip(colors, optimizers.items()):
            path = np.asarray(jax.jit(optimize, static_argnums=(0, 1, 3))(loss, optimizer, start, steps))
            final = float(loss(jnp.asarray(path[-1])))
            print(f"  {name:9s} eta={learning_rate_text(optimizer):7s} {final:.3e}")
            ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.4, alpha=0.9,
                    label=f"{name} (η={learning_rate_text(optimizer)}): {final:.1e}")
            ax.plot(path[-1, 0], path[-1, 1], "o", color=color, ms=6, mec="k", mew=0.6, zorder=3)
        ax.plot(*minimum, "k*", ms=12, label="minimum")
        ax.plot(*start, "ks", ms=6, label="start")
        ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y",
               title=f"{title}: {steps} steps")
        ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=3,
                  title="optimizer (learning rate η): final loss", title_fontsize=8.5, frameon=False)
    fig.suptitle("fnn.optim: paths of each optimizer from the same start", fontsize=12)
    fig.tight_layout()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    fig.savefig(OUT)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT) // 1024} KB)")


if __name__ == "__main__":
    main()

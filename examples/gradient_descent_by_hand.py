"""Gradient descent by hand: the notes' logistic regression with ``jax.grad``.

No layer class and no ``fnn.fit``: the model is a plain function of a params
dict, ``jax.grad`` does backpropagation and ``fnn.optim.sgd`` the update
``theta <- theta - eta * dJ/dtheta``.

1. The worked example of the notes: x = (5, 3), w = (0.02, 0.09), b = 0.01,
   y = 1 gives z = 0.38, y_hat = 0.5939, L = 0.5210 and the gradients
   dL/dw = (a - y) x = (-2.03, -1.218), dL/db = a - y = -0.4061; one step
   with eta = 0.005 moves w1 from 0.02 to 0.03.
2. The same model trained with batch gradient descent on the breast cancer
   set (standardised features), printing the cost J(w, b) as it falls and
   the test accuracy.

Run:  python examples/gradient_descent_by_hand.py      (a few seconds)
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import fnn


def predict(params, x):
    """``y_hat = sigmoid(x . w + b)`` for a batch ``x`` of shape (m, n)."""
    return fnn.activations.sigmoid(x @ params["w"] + params["b"])


def cost(params, x, y):
    """``J(w, b) = -(1/m) sum [y log y_hat + (1 - y) log(1 - y_hat)]``."""
    return fnn.losses.binary_cross_entropy(predict(params, x), y)


def worked_example() -> dict:
    """The notes' single step; returns the numbers it prints."""
    params = {"w": jnp.array([0.02, 0.09]), "b": jnp.array(0.01)}
    x, y = jnp.array([[5.0, 3.0]]), jnp.array([1.0])
    z = float((x @ params["w"] + params["b"])[0])
    loss, grads = jax.value_and_grad(cost)(params, x, y)
    opt = fnn.optim.sgd(0.005)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = fnn.optim.apply_updates(params, updates)
    numbers = {"z": z, "y_hat": float(predict(params, x)[0]), "loss": float(loss),
               "dw1": float(grads["w"][0]), "dw2": float(grads["w"][1]), "db": float(grads["b"]),
               "w1_new": float(new["w"][0])}
    print("the notes' worked example: " + ", ".join(f"{k} = {v:.4f}" for k, v in numbers.items()))
    return numbers


def train(epochs: int, learning_rate: float, seed: int) -> dict:
    """Batch gradient descent on the breast cancer set; returns final cost and test accuracy."""
    x, y = fnn.datasets.load_breast_cancer()
    y = y.astype(np.float32)
    split_key, init_key = jax.random.split(jax.random.key(seed))
    (x_train, y_train), (x_test, y_test) = fnn.train.train_dev_test_split(
        x, y, fractions=(0.8, 0.2), key=split_key, stratify=y)
    scaler = fnn.preprocessing.fit_standardizer(x_train)      # statistics of the train set only
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)

    params = {"w": fnn.initializers.normal(0.01)(init_key, (x.shape[1],)), "b": jnp.zeros(())}
    opt = fnn.optim.sgd(learning_rate)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(cost)(params, x_train, y_train)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), opt_state, loss

    for epoch in range(1, epochs + 1):
        params, opt_state, loss = step(params, opt_state)
        if epoch == 1 or epoch % max(1, epochs // 5) == 0:
            print(f"epoch {epoch:4d}  cost J(w, b) = {float(loss):.4f}")
    accuracy = float(fnn.metrics.accuracy(predict(params, x_test), y_test))
    print(f"test accuracy {accuracy:.4f} on {len(y_test)} examples")
    return {"cost": float(loss), "test_accuracy": accuracy}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return {"worked_example": worked_example(), **train(args.epochs, args.learning_rate, args.seed)}


if __name__ == "__main__":
    main()

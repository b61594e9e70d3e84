"""Explain a digit classifier's predictions: which pixels each method says the class rests on.

scikit-learn's 8x8 digits (offline) as 8x8x1 images in [0, 1]:

1. train a small CNN (Conv2D(32) -> ReLU -> Conv2D(64) -> ReLU -> global
   average pooling -> Dense(10)) with Adam;
2. for a few test digits, explain the predicted class with five methods of
   ``fnn.explain``: saliency, SmoothGrad, integrated gradients (50 steps from
   a black image, with its completeness delta), occlusion (2x2 windows) and
   Grad-CAM at the last convolution's ReLU;
3. print, per digit, the predicted class, ``S(x) - S(black)`` against the
   sum of the integrated gradients (they agree up to the delta), and how much
   the score drops when the 8 pixels integrated gradients ranks highest are
   blacked out, against 8 random pixels (the attributions point at pixels the
   model really uses when the first drop is larger);
4. with ``--plot FILE`` (matplotlib), draw the digits and each method's map.

Run:  python examples/explain_digits.py                    (about 20 s on a 2-core CPU)
      python examples/explain_digits.py --plot explain.png
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.train.data import train_dev_test_split


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--digits", type=int, default=4, help="test digits to explain")
    parser.add_argument("--steps", type=int, default=50, help="integrated gradients' steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE", help="save the attribution maps as a PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build_model() -> fnn.Sequential:
    """Two 3x3 convolutions with ReLU, global average pooling, a dense layer (logits)."""
    return fnn.Sequential({"conv1": fnn.Conv2D(32, 3, padding="same", w_init="he_normal"),
                           "relu1": fnn.Activation("relu"),
                           "conv2": fnn.Conv2D(64, 3, padding="same", w_init="he_normal"),
                           "relu2": fnn.Activation("relu"),
                           "pool": fnn.GlobalAvgPool(), "head": fnn.Dense(10)})


def explain(model, params, state, x, key, steps):
    """Each method's map of the predicted class, ``(digits, 8, 8)`` (channels summed), and
    the integrated gradients' delta."""
    maps = {
        "saliency": fnn.explain.saliency(model, params, state, x, abs=True),
        "SmoothGrad": fnn.explain.smoothgrad(model, params, state, x, key=key, samples=32,
                                             noise=0.15, kind="square"),
        "integrated gradients": None,
        "occlusion 2x2": fnn.explain.occlusion(model, params, state, x, window=(2, 2, 1)),
        "Grad-CAM relu2": fnn.explain.grad_cam(model, params, state, x, layer="relu2"),
    }
    ig, delta = fnn.explain.integrated_gradients(model, params, state, x, steps=steps,
                                                 return_delta=True)
    maps["integrated gradients"] = ig
    return {name: np.asarray(m).reshape(m.shape[:3]) if m.ndim == 4 else np.asarray(m)
            for name, m in maps.items()}, np.asarray(ig), np.asarray(delta)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, y = fnn.datasets.load_digits()
    x = np.asarray(x, np.float32).reshape(-1, 8, 8, 1)   # in [0, 1]; (batch, H, W, channels)
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = train_dev_test_split(
        x, y, fractions=(0.7, 0.15, 0.15), key=jax.random.key(args.seed), stratify=y)
    model = build_model()
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(3e-3),
                     (x_train, y_train), epochs=args.epochs, batch_size=32,
                     key=jax.random.key(args.seed), validation_data=(x_dev, y_dev),
                     metrics=["accuracy"], progress=not args.no_progress)
    params, state = result.params, result.state
    accuracy = fnn.evaluate(model, params, state, (x_test, y_test),
                            metrics=["accuracy"])["accuracy"]
    print(f"test accuracy {accuracy:.3f} after {args.epochs} epochs")
    images = jnp.asarray(x_test[:args.digits])
    logits = np.asarray(fnn.predict(model, params, state, images))
    predicted = logits.argmax(axis=1)
    maps, ig, delta = explain(model, params, state, images, jax.random.key(args.seed + 1),
                              args.steps)
    black = np.asarray(fnn.predict(model, params, state, jnp.zeros_like(images)))
    rng = np.random.default_rng(args.seed)
    drops = []
    print("digit  true  predicted  S(x)-S(black)  sum(IG)   delta     drop: top-8 IG  random 8")
    for i in range(args.digits):
        c = predicted[i]
        top = np.argsort(-ig[i].ravel())[:8]
        rand = rng.choice(64, 8, replace=False)
        hidden = []
        for pixels in (top, rand):
            masked = np.array(images[i]).ravel()
            masked[pixels] = 0.0
            hidden.append(np.asarray(fnn.predict(model, params, state,
                                                 masked.reshape(1, 8, 8, 1)))[0, c])
        drops.append((logits[i, c] - hidden[0], logits[i, c] - hidden[1]))
        print(f"{i:>5}  {y_test[i]:>4}  {c:>9}  {logits[i, c] - black[i, c]:>13.3f}  "
              f"{ig[i].sum():>7.3f}  {delta[i]:>+.1e}  {drops[-1][0]:>15.3f}  "
              f"{drops[-1][1]:>8.3f}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        columns = ["digit"] + list(maps)
        fig, axes = plt.subplots(args.digits, len(columns),
                                 figsize=(1.9 * len(columns), 1.9 * args.digits),
                                 squeeze=False)
        for i in range(args.digits):
            axes[i, 0].imshow(np.asarray(images[i, :, :, 0]), cmap="gray_r")
            axes[i, 0].set_ylabel(f"true {y_test[i]}, pred {predicted[i]}", fontsize=8)
            for j, name in enumerate(maps, start=1):
                m = maps[name][i]
                limit = np.abs(m).max() or 1.0
                signed = m.min() < 0
                axes[i, j].imshow(m, cmap="RdBu_r" if signed else "inferno",
                                  vmin=-limit if signed else 0, vmax=limit)
        for j, name in enumerate(columns):
            axes[0, j].set_title(name, fontsize=9)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("what the CNN's predicted class rests on (red: for, blue: against)",
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        plt.close(fig)
        print(f"drawn in {args.plot}")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return {"test_accuracy": float(accuracy), "delta": delta, "ig": ig,
            "score_change": np.array([logits[i, predicted[i]] - black[i, predicted[i]]
                                      for i in range(args.digits)]),
            "drops": np.array(drops)}


if __name__ == "__main__":
    main()

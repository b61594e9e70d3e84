"""Run with XLA_FLAGS=--xla_force_host_platform_device_count=8: fit over a mesh of 8 CPU
devices equals fit on one device (BatchNorm included); prints one JSON line."""

import json

import jax
import numpy as np

from jax.sharding import PartitionSpec as P

import fnn


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    # No bias before BatchNorm: its gradient is zero up to rounding noise, which Adam's
    # normalised step turns into +-lr steps that differ with the order of the additions.
    model = fnn.Sequential([fnn.Dense(16, use_bias=False), fnn.BatchNorm(momentum=0.9),
                            fnn.Activation("relu"), fnn.Dense(2)])
    options = dict(epochs=3, batch_size=32, key=jax.random.key(0), progress=False,
                   metrics=["accuracy"], validation_data=(x[:16], y[:16]))
    opt = fnn.optim.adam(0.01)
    one = fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y), **options)
    mesh = jax.make_mesh((8,), ("data",))
    many = fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y), mesh=mesh, **options)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves((one.params, one.state)),
                               jax.tree.leaves((many.params, many.state))))
    sharding = jax.tree.leaves(many.params)[0].sharding
    scores = [fnn.evaluate(model, one.params, one.state, (x[:90], y[:90]),
                           loss="sparse_softmax_cross_entropy", metrics=["accuracy"], **m)
              for m in ({}, {"mesh": mesh})]          # 90: not divisible by 8 (replicated)
    predictions = [np.asarray(fnn.predict(model, one.params, one.state, x, **m))
                   for m in ({}, {"mesh": mesh})]
    prediction_diff = float(np.max(np.abs(predictions[0] - predictions[1])))
    # Tensor parallel too: the first layer's columns and the second's rows split over "model".
    mesh2d = jax.make_mesh((4, 2), ("data", "model"))
    split = {"0/w": P(None, "model"), "1/*": P("model"), "3/w": P("model", None)}
    sharded = fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y), mesh=mesh2d,
                      param_sharding=split, **options)
    sharded_diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                       for a, b in zip(jax.tree.leaves((one.params, one.state)),
                                       jax.tree.leaves((sharded.params, sharded.state))))
    adam = fnn.optim.find_states(sharded.opt_state, fnn.optim.ScaleByAdamState)[0]
    specs = {"params": jax.tree.map(lambda a: str(a.sharding.spec), sharded.params),
             "mu": jax.tree.map(lambda a: str(a.sharding.spec), adam.mu),
             "count": str(adam.count.sharding.spec)}
    errors = []
    for kwargs in ({"batch_size": 30}, {"mesh": jax.make_mesh((8,), ("batch",))},
                   {"mesh": mesh2d, "param_sharding": {"0/w": P("model", None)}}):
        try:
            fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y),
                    **{**options, "mesh": mesh, **kwargs})
        except ValueError as err:
            errors.append(str(err))
    print(json.dumps({"max_abs_diff": diff, "devices": len(sharding.device_set),
                      "loss_one": one.history["loss"], "loss_many": many.history["loss"],
                      "errors": errors, "scores": scores,
                      "prediction_diff": prediction_diff, "sharded_diff": sharded_diff,
                      "specs": specs}))


if __name__ == "__main__":
    main()

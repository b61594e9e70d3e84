"""One process of a two-process data-parallel fit on localhost (JAX's real multi-process
runtime on CPU; each process passes its half of the training and validation data; then a
streamed fit over memory-mapped files of all the data, each process reading only its own
rows of each batch): ``python multiprocess_check.py PORT PROCESS_ID OUT.npz``, run twice at once
with XLA_FLAGS=--xla_force_host_platform_device_count=4; or ``... single OUT.npz`` for the
one-process reference on 8 emulated devices."""

import sys

import jax
import numpy as np


def main() -> None:
    if sys.argv[1] != "single":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{sys.argv[1]}", num_processes=2,
                                   process_id=int(sys.argv[2]))
    import fnn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    xv, yv = x[:16] + 0.1, y[:16]
    # The same data as files every process maps whole (each reads only its own rows).
    files = {}
    for name, array in (("x", x), ("y", y), ("xv", xv), ("yv", yv)):
        path = f"{sys.argv[-1]}.{name}.npy"
        np.save(path, array)
        files[name] = np.load(path, mmap_mode="r")
    if jax.process_count() > 1:                  # each process passes only its own half
        i = jax.process_index()
        x, y = x[48 * i:48 * (i + 1)], y[48 * i:48 * (i + 1)]
        xv, yv = xv[8 * i:8 * (i + 1)], yv[8 * i:8 * (i + 1)]
    model = fnn.Sequential([fnn.Dense(16, use_bias=False), fnn.BatchNorm(momentum=0.9),
                            fnn.Activation("relu"), fnn.Dense(2)])
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.01), (x, y),
                     epochs=3, batch_size=32, key=jax.random.key(0), progress=False,
                     validation_data=(xv, yv), metrics=["accuracy"], mesh=mesh)
    streamed = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.01),
                       (files["x"], files["y"]), epochs=3, batch_size=32, key=jax.random.key(0),
                       progress=False, validation_data=(files["xv"], files["yv"]),
                       validation_batch_size=8, metrics=["accuracy"], mesh=mesh, stream=True)

    refused = 0
    if jax.process_count() > 1:          # each process its own file: refused, not mixed
        path = f"{sys.argv[-1]}.own.npy"
        np.save(path, np.asarray(files["x"]) + jax.process_index())
        try:
            fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.01),
                    (np.load(path, mmap_mode="r"), files["y"]), epochs=1, batch_size=32,
                    key=jax.random.key(0), progress=False, mesh=mesh, stream=True)
        except ValueError as err:
            refused = int("the processes passed different data" in str(err))

    def host(result):
        leaves = jax.tree.leaves((result.params, result.state))
        return [np.asarray(jax.device_get(a.addressable_data(0))) for a in leaves]
    np.savez(sys.argv[-1], *host(result), loss=np.asarray(result.history["loss"]),
             val_loss=np.asarray(result.history["val_loss"]),
             devices=jax.device_count(), processes=jax.process_count(),
             **{f"stream_{i}": a for i, a in enumerate(host(streamed))},
             stream_loss=np.asarray(streamed.history["loss"]),
             stream_val_loss=np.asarray(streamed.history["val_loss"]), refused=refused)


if __name__ == "__main__":
    main()

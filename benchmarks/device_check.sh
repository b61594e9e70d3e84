#!/usr/bin/env bash
# fnn on a real accelerator, in one prepared run of under 8 minutes (issue 10).
#
#   bash benchmarks/device_check.sh [cuda12|cuda13]      (default: cuda12)
#
# On a machine with an NVIDIA GPU: makes a fresh virtual environment with JAX's CUDA
# build (the README's extra), runs the tests that matter on a GPU (mixed precision with
# bfloat16/float16 and loss scaling, buffer donation, the dispatch default, sharding over
# the real devices, convolutions and attention on cuDNN), then fit against hand-written
# JAX, and prints one table. It writes the table to $OUT (the device tool's folder) or to
# benchmarks/results/device_check.txt. Status: prepared, not yet run on a GPU.
set -u
cd "$(dirname "$0")/.."
extra="${1:-cuda12}"
out_dir="${OUT:-benchmarks/results}"
mkdir -p "$out_dir"
report="$out_dir/device_check.txt"
venv="${TMPDIR:-/tmp}/fnn-device-venv"
start=$(date +%s)

python3 -m venv "$venv" && . "$venv/bin/activate"
pip install -q -e ".[test,$extra]" || { echo "install failed"; exit 1; }

{
  echo "# fnn device check, $(date -u +%Y-%m-%dT%H:%MZ)"
  python - <<'PY'
import jax
print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
PY
} | tee "$report"

# 1. the tests that matter on an accelerator (each file small; the suite's cache helps)
timeout 300 python -m pytest -q -x \
  tests/test_train_precision.py tests/test_train_loss_scaling.py tests/test_train_dispatch.py \
  tests/test_train_epoch.py tests/test_optim_compile.py tests/test_layers_conv.py \
  tests/test_layers_attention.py tests/test_layers_normalization.py 2>&1 | tail -3 \
  | sed 's/^/tests: /' | tee -a "$report"

# 2. facts measured on the real devices, one table
timeout 200 python - <<'PY' 2>&1 | tee -a "$report"
import time
import jax, jax.numpy as jnp, numpy as np
import fnn

rows = []
model = fnn.Sequential([fnn.Dense(256), fnn.Activation("relu"), fnn.Dense(10)])
x = np.random.default_rng(0).normal(size=(4096, 64)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int32)
rows.append(("dispatch default (MLP / CNN)",
             f"{fnn.train.dispatch.resolve(model, None, None)} / "
             f"{fnn.train.dispatch.resolve(fnn.Conv2D(4, 3), None, None)}"))
base = dict(epochs=3, batch_size=256, key=jax.random.key(0), progress=False)
r32 = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), (x, y), **base)
for name in ("bfloat16", "float16"):
    try:
        r = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), (x, y),
                    precision=name, **base)
        rows.append((f"precision={name}: last loss vs float32",
                     f"{r.history['loss'][-1]:.4f} vs {r32.history['loss'][-1]:.4f}"))
    except Exception as err:        # report, do not stop the check
        rows.append((f"precision={name}", f"FAILED: {type(err).__name__}: {err}"[:120]))
params, _ = model.init(jax.random.key(1), x[:1])
step = fnn.train.make_train_step(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3))
opt_state = fnn.optim.adam(1e-3).init(params)
old = jax.tree.leaves(params)[0]
step(params, {}, opt_state, (x[:256], y[:256]), jax.random.key(2))
rows.append(("buffer donation (old params deleted)", str(old.is_deleted())))
mesh = jax.make_mesh((jax.device_count(),), ("data",))
batch = 256 * jax.device_count()
one = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), (x, y),
              **{**base, "batch_size": batch})
many = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), (x, y),
               mesh=mesh, **{**base, "batch_size": batch})
diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
           zip(jax.tree.leaves(one.params), jax.tree.leaves(many.params)))
rows.append((f"fit over {jax.device_count()} device(s) vs one: max |diff|", f"{diff:.2e}"))
for label, value in rows:
    print(f"{label:<48} {value}")
PY

# 3. fit against hand-written JAX on the device
timeout 240 python benchmarks/bench_fit.py --reps 3 --cases big,small --no-write 2>&1 \
  | tail -12 | tee -a "$report"
echo "total: $(( $(date +%s) - start )) s" | tee -a "$report"

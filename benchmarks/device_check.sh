#!/usr/bin/env bash
# fnn on a real accelerator, in one prepared run of under 8 minutes (issues 10, 25).
#
#   bash benchmarks/device_check.sh            (the device tool: run it from the repo root)
#
# Runs the tree as it is with the machine's own Python ($PYTHON, default python3) and
# PYTHONPATH=., installing nothing: the lent GPU machines reach no package registry, and
# their python3 already has JAX with CUDA, chex, tqdm, pytest, hypothesis, scikit-learn,
# matplotlib and safetensors (not grain: the tests that need it skip, saying so). It runs
# the tests that matter on a GPU (mixed precision with bfloat16/float16 and loss scaling,
# buffer donation, the dispatch default, sharding over the real devices, convolutions and
# attention on cuDNN), then fit against hand-written JAX, and writes one table to
# $OUT/device_check.txt (the device tool's folder) or benchmarks/results/device_check.txt.
# The same command line runs on a CPU-only machine (checked there; the GPU rows then
# describe the CPU). The tests run in one process, without the suite's xdist workers (the
# machine may lack pytest-xdist, and two processes would both claim the GPU's memory), at
# XLA's default codegen. Status: prepared and run on CPU; not yet run on a GPU.
set -u
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export FNN_TEST_CACHE="${FNN_TEST_CACHE:-${TMPDIR:-/tmp}/fnn-device-cache}"
out_dir="${OUT:-benchmarks/results}"
mkdir -p "$out_dir"
report="$out_dir/device_check.txt"
start=$(date +%s)

"$py" -c "import jax, chex, tqdm, numpy" 2>/dev/null || {
  echo "device_check: $py lacks jax, chex, tqdm or numpy (nothing is installed here)" \
    | tee "$report"; exit 1; }

{
  echo "# fnn device check, $(date -u +%Y-%m-%dT%H:%MZ)"
  "$py" - <<'PY'
import importlib.util, jax
missing = [m for m in ("grain", "sklearn", "safetensors", "hypothesis")
           if importlib.util.find_spec(m) is None]
print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
print(f"not installed (their tests skip): {missing or 'none'}")
PY
} | tee "$report"

# 1. the tests that matter on an accelerator (each file small; the suite's cache helps)
FNN_TEST_XLA_OPT=default timeout 200 "$py" -m pytest -q -x -rs -o addopts="-p no:cacheprovider" \
  tests/test_train_precision.py tests/test_train_loss_scaling.py tests/test_train_dispatch.py \
  tests/test_train_epoch.py tests/test_optim_compile.py tests/test_layers_conv.py \
  tests/test_layers_attention.py tests/test_layers_normalization.py 2>&1 | tail -6 \
  | sed 's/^/tests: /' | tee -a "$report"

# 2. facts measured on the real devices, one table
timeout 100 "$py" - <<'PY' 2>&1 | tee -a "$report"
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
bench="${TMPDIR:-/tmp}/fnn-device-bench.txt"
timeout 150 "$py" benchmarks/bench_fit.py --reps 3 --cases big,small --no-write > "$bench" 2>&1 \
  || echo "bench_fit: stopped at 150 s (exit $?); what it printed:" >> "$bench"
tail -30 "$bench" | tee -a "$report"
echo "total: $(( $(date +%s) - start )) s" | tee -a "$report"

"""First call: the wall time from calling ``fnn.fit`` to the end of epoch 1, in a fresh process.

Each measurement runs in a fresh Python process (``subprocess``), so nothing
is traced or compiled yet, with JAX's persistent compilation cache off
(``jax_compilation_cache_dir=None``, ``jax_enable_compilation_cache=False``,
``JAX_COMPILATION_CACHE_DIR`` removed from the environment). The clock starts
after ``import jax, fnn`` (import times are reported separately) and after
the data (numpy arrays), the model, the optimizer and the key exist:

- ``fnn.fit``: ``fnn.fit(model, "sparse_softmax_cross_entropy", adam, (x, y),
  epochs=1, batch_size=b, key=key, progress=False)`` (``params=None``: fit
  initialises the model itself); the clock stops when it returns (the
  epoch's loss is then a Python float in the history);
- ``hand``: the same work written by hand: ``jax.device_put`` of the data,
  one jitted init (``model.init(split(key)[0], x)`` + ``adam.init``: the
  parameters fit starts from), one jitted epoch (``shuffled_indices`` of the
  epoch's shuffle key, derived as fit does, ``lax.scan`` over the steps, each
  gathering its batch with ``jnp.take``), and ``float(mean loss)``.

Both report the first epoch's loss (they must agree: same parameters, same
order). In each process ``jax.monitoring`` listeners count the backend
compiles (``/jax/core/compile/backend_compile_duration``, one per compiled
XLA program, eager operations included), the traces
(``/jax/core/compile/jaxpr_trace_duration``: every ``jit`` trace, also those
of ``jax.eval_shape``) and the lowerings, with the function names. Inside
the fit process, fit's phases are timed from outside by wrapping the
functions ``fnn.train.fit`` looks up at call time (checks, initial
parameters, ``opt.init``, ``own_arrays``, building and dispatching the
epoch); what comes after the epoch's dispatch (waiting for the device, the
host transfer, the NaN checks, the history) is ``after dispatch``. Every
compile is attributed to the phase it happened in.

Warm start: each variant also runs with fnn's persistent compilation cache
(``fnn.train.enable_compilation_cache``) in a fresh temporary folder that one
earlier, unmeasured process of the same variant filled; the "warm" column is
the same first epoch then, the programs loaded from the folder instead of
compiled (tracing and lowering still run).

Median over ``--reps`` processes per variant (alternating fnn / hand; cold and
warm alternate too).

    python benchmarks/bench_first_call.py [--reps 3] [--models small,big] [--no-write]
    python benchmarks/bench_first_call.py --reps 1 --models small --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = {"small": ((64, 32, 10), 32, 60), "big": ((784, 512, 512, 10), 128, 60)}
VARIANTS = ("fnn.fit", "hand")
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"  # compiled or loaded
CACHE_HIT = "/jax/compilation_cache/cache_hits"
TRACE = "/jax/core/compile/jaxpr_trace_duration"
LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
MARK = "RESULT "


# ---------------------------------------------------------------- the child process

def child(variant: str, model_name: str, cache: str | None) -> None:
    start = time.perf_counter()
    import jax
    import_jax = time.perf_counter() - start
    import fnn
    import_fnn = time.perf_counter() - start - import_jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    if cache:
        fnn.train.enable_compilation_cache(cache)
    else:
        jax.config.update("jax_compilation_cache_dir", None)
        try:
            jax.config.update("jax_enable_compilation_cache", False)
        except (AttributeError, KeyError, ValueError):
            pass

    phase = ["setup"]
    events = []  # (phase, event, function name, seconds)
    counters = collections.Counter()

    def on_duration(event, duration, **kwargs):
        events.append((phase[0], event, str(kwargs.get("fun_name", "?")), float(duration)))

    def on_event(event, **kwargs):
        counters[event] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)

    sizes, batch, steps = MODELS[model_name]
    n = steps * batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n).astype(np.int32)
    layers = []
    for width in sizes[1:-1]:
        layers += [fnn.Dense(width), fnn.Activation("relu")]
    model = fnn.Sequential(layers + [fnn.Dense(sizes[-1])])
    opt = fnn.optim.adam(1e-3)
    key = jax.block_until_ready(jax.random.key(0))

    phase_s = collections.defaultdict(float)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            before, phase[0] = phase[0], name
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phase_s[name] += time.perf_counter() - t
                phase[0] = before
        return wrapper

    events.clear()
    counters.clear()
    if variant == "fnn.fit":
        import importlib
        checks = importlib.import_module("fnn.train.checks")
        fit_module = importlib.import_module("fnn.train.fit")  # fnn.train.fit is the function
        wrapped = []
        for name, label in (("build_config", "checks"), ("initial_structs", "checks"),
                            ("check_opt_state", "checks"), ("initial_params", "init params"),
                            ("own_arrays", "own arrays")):
            if callable(getattr(fit_module, name, None)):
                setattr(fit_module, name, timed(label, getattr(fit_module, name)))
                wrapped.append(name)
        for name in ("check_data", "check_shapes", "check_label_range"):
            if callable(getattr(checks, name, None)):
                setattr(checks, name, timed("checks", getattr(checks, name)))
                wrapped.append("checks." + name)
        dispatched = []
        real_epoch_function = getattr(fit_module, "epoch_function", None)
        if callable(real_epoch_function):
            def epoch_function(*args, **kwargs):
                run_epoch = real_epoch_function(*args, **kwargs)

                def run(*a, **k):
                    out = timed("epoch dispatch", run_epoch)(*a, **k)
                    phase[0] = "after dispatch"
                    dispatched.append(time.perf_counter())
                    return out
                return run
            fit_module.epoch_function = timed("build epoch", epoch_function)
            wrapped.append("epoch_function")
        if hasattr(opt, "_replace"):
            opt = opt._replace(init=timed("opt.init", opt.init))
            wrapped.append("opt.init")
        phase[0] = "other"
        t0 = time.perf_counter()
        result = fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y), epochs=1,
                         batch_size=batch, key=key, progress=False)
        end = time.perf_counter()
        loss = result.history["loss"][0]
        if dispatched:
            phase_s["after dispatch"] = end - dispatched[0]
    else:
        from fnn.train import shuffled_indices
        wrapped = []
        loss_fn = fnn.losses.sparse_softmax_cross_entropy
        x_struct = jax.ShapeDtypeStruct(x.shape, x.dtype)

        @jax.jit
        def init(key):
            params, _ = model.init(jax.random.split(key)[0], x_struct)
            return params, opt.init(params)

        @jax.jit
        def epoch(params, opt_state, x, y, key, epoch):
            shuffle_key, _ = jax.random.split(jax.random.fold_in(jax.random.split(key)[1], epoch))
            perm = shuffled_indices(shuffle_key, n)

            def body(carry, i):
                params, opt_state = carry
                idx = lax.dynamic_slice_in_dim(perm, i * batch, batch)
                xb, yb = jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
                loss, grads = jax.value_and_grad(
                    lambda p: loss_fn(model.apply(p, {}, xb)[0], yb))(params)
                updates, opt_state = opt.update(grads, opt_state, params)
                return (fnn.optim.apply_updates(params, updates), opt_state), loss
            (params, opt_state), losses = lax.scan(body, (params, opt_state),
                                                   jnp.arange(steps, dtype=jnp.int32))
            return params, opt_state, jnp.mean(losses)

        t0 = time.perf_counter()
        xd, yd = timed("device_put", jax.device_put)((x, y))
        params, opt_state = timed("init params + opt.init", init)(key)
        params, opt_state, mean_loss = timed("epoch dispatch", epoch)(params, opt_state, xd, yd,
                                                                      key, 0)
        loss = timed("after dispatch", float)(mean_loss)
        end = time.perf_counter()
    wall = end - t0
    phase_s["other"] = wall - sum(v for k, v in phase_s.items() if k != "other")
    print(MARK + json.dumps(dict(
        variant=variant, model=model_name, wall=wall, import_jax=import_jax,
        import_fnn=import_fnn, loss=loss, phases=dict(phase_s), events=events,
        counters=dict(counters), wrapped=wrapped, jax=jax.__version__,
        device=f"{jax.devices()[0].device_kind} ({jax.default_backend()})")))


# ---------------------------------------------------------------- the parent process

def run_child(variant: str, model_name: str, timeout: float, cache: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    command = [sys.executable, os.path.abspath(__file__), "--child", variant, "--model",
               model_name] + (["--cache", cache] if cache else [])
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} / {model_name} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


def totals(run: dict) -> dict:
    out = collections.Counter()
    for _, event, _, seconds in run["events"]:
        out[event + " n"] += 1
        out[event + " s"] += seconds
    return out


def summary(runs: list) -> dict:
    t = [totals(r) for r in runs]

    def med(key):
        return statistics.median(x[key] for x in t)
    return dict(wall=statistics.median(r["wall"] for r in runs),
                wall_min=min(r["wall"] for r in runs),
                compiles=med(BACKEND_COMPILE + " n"), compile_s=med(BACKEND_COMPILE + " s"),
                traces=med(TRACE + " n"), trace_s=med(TRACE + " s"),
                lowerings=med(LOWER + " n"), lower_s=med(LOWER + " s"))


def median_run(runs: list) -> dict:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def programs(run: dict) -> list:
    """``[(phase, function, traces, trace s, lowerings, lower s, compiles, compile s)]``.

    A function's trace event names it ``f``, its lowering and compile ``jit(f)``: one row.
    """
    rows = collections.OrderedDict()
    columns = {TRACE: 0, LOWER: 2, BACKEND_COMPILE: 4}
    for phase, event, name, seconds in run["events"]:
        if event not in columns:
            continue
        if name.startswith("jit(") and name.endswith(")"):
            name = name[4:-1]
        row = rows.setdefault((phase, name), [0, 0.0, 0, 0.0, 0, 0.0])
        row[columns[event]] += 1
        row[columns[event] + 1] += seconds
    return [(phase, name, *row) for (phase, name), row in rows.items()]


def warm_report(results: dict, warm: dict) -> list:
    """Lines comparing each variant's cold first epoch with its warm one."""
    lines = ["warm start: the persistent compilation cache filled by one earlier process "
             "(medians; programs loaded / compiled in the median warm process)",
             f"{'model':<34} {'variant':<8} {'cold s':>7} {'warm s':>7} {'warm/cold':>9} "
             f"{'loaded':>6} {'compiled':>8} {'load s':>6}"]
    for model_name, per_variant in warm.items():
        sizes, batch, steps = MODELS[model_name]
        title = f"MLP {'-'.join(map(str, sizes))}, b={batch}, {steps} steps"
        for variant, runs in per_variant.items():
            cold_s = statistics.median(r["wall"] for r in results[model_name][variant])
            warm_s = statistics.median(r["wall"] for r in runs)
            run = median_run(runs)
            loaded = run["counters"].get(CACHE_HIT, 0)
            programs = sum(1 for _, event, _, _ in run["events"] if event == BACKEND_COMPILE)
            load_s = sum(sec for _, event, _, sec in run["events"] if event == BACKEND_COMPILE)
            lines.append(f"{title:<34} {variant:<8} {cold_s:>7.2f} {warm_s:>7.2f} "
                         f"{warm_s / cold_s:>9.2f} {loaded:>6} {programs - loaded:>8} "
                         f"{load_s:>6.2f}")
    return lines + [""]


def report(results: dict, reps: int, warm: dict | None = None) -> str:
    first = next(iter(next(iter(results.values())).values()))[0]
    lines = [f"device: {first['device']}, {os.cpu_count()} cpus, "
             f"{platform.processor() or platform.machine()}, jax {first['jax']}, "
             f"load average {os.getloadavg()[0]:.1f}; {reps} fresh processes per variant "
             "(medians); cold: persistent compilation cache off", ""]
    all_runs = [r for per_model in results.values() for runs in per_model.values() for r in runs]
    lines += [f"import jax {statistics.median(r['import_jax'] for r in all_runs):.2f} s, "
              f"then import fnn {statistics.median(r['import_fnn'] for r in all_runs):.2f} s "
              "(not included below)", ""]
    header = (f"{'model':<34} {'variant':<8} {'first epoch s':>13} {'min s':>6} "
              f"{'compiles':>8} {'compile s':>9} {'traces':>6} {'trace s':>7} "
              f"{'lowerings':>9} {'lower s':>7}")
    lines.append(header)
    for model_name, per_variant in results.items():
        sizes, batch, steps = MODELS[model_name]
        title = f"MLP {'-'.join(map(str, sizes))}, b={batch}, {steps} steps"
        sums = {}
        for variant, runs in per_variant.items():
            s = sums[variant] = summary(runs)
            lines.append(f"{title:<34} {variant:<8} {s['wall']:>13.2f} {s['wall_min']:>6.2f} "
                         f"{s['compiles']:>8.0f} {s['compile_s']:>9.2f} {s['traces']:>6.0f} "
                         f"{s['trace_s']:>7.2f} {s['lowerings']:>9.0f} {s['lower_s']:>7.2f}")
        if "fnn.fit" in sums and "hand" in sums:
            a, b = sums["fnn.fit"], sums["hand"]
            losses = [r["loss"] for v in VARIANTS for r in per_variant[v]]
            lines.append(f"{'':<34} fnn/hand: first epoch {a['wall'] / b['wall']:.2f}x, "
                         f"compiles {a['compiles']:.0f} vs {b['compiles']:.0f}, compile s "
                         f"{a['compile_s'] / max(b['compile_s'], 1e-9):.2f}x; first-epoch "
                         f"loss {min(losses):.6f} .. {max(losses):.6f}")
    lines.append("")
    if warm:
        lines += warm_report(results, warm)
    for model_name, per_variant in results.items():
        sizes, batch, steps = MODELS[model_name]
        for variant, runs in per_variant.items():
            lines.append(f"{variant}, MLP {'-'.join(map(str, sizes))}: phases (median s over "
                         f"processes; compiles in the median process)")
            run = median_run(runs)
            per_phase = collections.Counter()
            for phase, event, _, seconds in run["events"]:
                if event == BACKEND_COMPILE:
                    per_phase[phase] += 1
            names = list(dict.fromkeys(p for r in runs for p in r["phases"]))
            for phase in names:
                value = statistics.median(r["phases"].get(phase, 0.0) for r in runs)
                lines.append(f"  {phase:<24} {value:>7.3f} s  {per_phase.get(phase, 0):>3} "
                             "compiles")
            lines.append(f"  {'phase':<22} {'function':<30} {'traces':>6} {'s':>6} "
                         f"{'lowerings':>9} {'s':>6} {'compiles':>8} {'s':>6}")
            for phase, name, nt, st, nl, sl, nc, sc in programs(run):
                lines.append(f"  {phase:<22} {name:<30} {nt:>6} {st:>6.3f} {nl:>9} {sl:>6.3f} "
                             f"{nc:>8} {sc:>6.3f}")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3,
                        help="fresh processes per variant and model (default 3)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--timeout", type=float, default=180,
                        help="seconds allowed per process (default 180)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not write benchmarks/results/first_call.txt")
    parser.add_argument("--no-warm", action="store_true",
                        help="skip the warm-start runs (persistent compilation cache)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.cache)
        return
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}")
    results, warm = {}, {}
    with tempfile.TemporaryDirectory(prefix="fnn-bench-cache-") as folder:
        for model_name in models:
            results[model_name] = {v: [] for v in VARIANTS}
            caches = {v: os.path.join(folder, f"{model_name}-{v}") for v in VARIANTS}
            if not args.no_warm:
                warm[model_name] = {v: [] for v in VARIANTS}
                for variant in VARIANTS:  # fill each folder once, unmeasured
                    run_child(variant, model_name, args.timeout, caches[variant])
            for rep in range(args.reps):
                for variant in (VARIANTS if rep % 2 == 0 else VARIANTS[::-1]):
                    runs = [("cold", None), ("warm", caches[variant])][::1 if rep % 2 == 0 else -1]
                    for kind, cache in runs:
                        if kind == "warm" and args.no_warm:
                            continue
                        out = run_child(variant, model_name, args.timeout, cache)
                        (warm if kind == "warm" else results)[model_name][variant].append(out)
    text = report(results, args.reps, warm)
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                            "first_call.txt")
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

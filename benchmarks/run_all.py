"""Run every benchmark on this machine, one after another, and print the table of ratios.

Each benchmark writes its own ``benchmarks/results/<name>.txt`` (the device it
ran on first); this script runs them in turn (never two at once: on a 2-core
machine a benchmark beside another measures noise), then collects the lines
that state a ratio or a goal into one table, ``benchmarks/results/summary.txt``,
which ``docs/benchmarks.md`` quotes. On a machine with a GPU the same scripts
run on it (JAX picks the device), so the table holds the GPU's figures.

Benchmarks that need what the machine lacks are skipped with a note: PyTorch
(``bench_cnn.py``, ``bench_lstm.py`` compare with it when it is installed),
Captum (``bench_explain.py``), Optuna (``bench_tune.py``).

    python benchmarks/run_all.py [--only fit,tune] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# script, result file, modules it needs, its arguments, more arguments for --quick
BENCHMARKS = [
    ("bench_optim_adam.py", "optim_adam.txt", (), [], ["--reps", "3"]),
    ("bench_fit.py", "fit.txt", (), [], ["--reps", "3"]),
    ("bench_first_call.py", "first_call.txt", (), [], ["--reps", "1"]),
    ("bench_allocator.py", "allocator.txt", (), [], []),
    ("bench_cnn.py", "cnn_tuned.txt", (), ["--tune-allocator"], []),
    ("bench_lstm.py", "lstm_tuned.txt", (), ["--tune-allocator"], []),
    ("bench_many.py", "many.txt", ("sklearn",), [], []),
    ("bench_stream.py", "stream.txt", (), [], []),
    ("bench_explain.py", "explain.txt", ("torch", "captum", "sklearn"), [], ["--reps", "3"]),
    ("bench_tune.py", "tune.txt", ("optuna",), [], ["--reps", "3"]),
]
RATIO = re.compile(r"(/|goal|speed-up|ratio)", re.I)


def summary_lines(path: str) -> list[str]:
    """The lines of a result file that state a ratio or a goal (and its device line)."""
    with open(path) as f:
        lines = [line.rstrip() for line in f]
    device = next((line for line in lines if line.startswith("device")), "")
    picked = [line for line in lines if RATIO.search(line) and not line.startswith("device")]
    return ([device] if device else []) + picked


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated scripts (without bench_ and .py)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    chosen = None if not args.only else {f"bench_{n}.py" for n in args.only.split(",")}
    out = []
    for script, result, needs, arguments, quick in BENCHMARKS:
        if chosen is not None and script not in chosen:
            continue
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            out.append(f"## {script}: skipped (needs {', '.join(missing)})")
            continue
        start = time.perf_counter()
        done = subprocess.run([sys.executable, os.path.join(HERE, script)] + arguments
                              + (quick if args.quick else []), cwd=os.path.dirname(HERE))
        took = time.perf_counter() - start
        path = os.path.join(HERE, "results", result)
        if done.returncode != 0 or not os.path.exists(path):
            out.append(f"## {script}: failed (exit {done.returncode})")
            continue
        out.append(f"## {script} ({took:.0f} s) -> results/{result}")
        out += ["    " + line for line in summary_lines(path)]
    text = "\n".join(out) + "\n"
    print(text)
    with open(os.path.join(HERE, "results", "summary.txt"), "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

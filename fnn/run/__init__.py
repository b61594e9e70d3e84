"""Runs described by config files: ``python -m fnn train CONFIG.toml --run-dir DIR``;
see ``docs/runs.md``."""

"""``fnn.checkpoint.save`` / ``load`` / ``info``: pytrees in safetensors files.

Every array of the tree is one tensor named by its path (``params/0/w``,
``opt_state/0/mu/0/w``; dict keys, list and tuple positions, NamedTuple
field names, joined by ``/``). The tree's shape (dicts, lists, tuples,
NamedTuples such as the optimizer states, ``None``, empty containers and
plain Python numbers and strings) is kept as JSON in the file's metadata,
with the config, the step, the epoch and the versions; a PRNG key is stored
as its ``uint32`` key data plus the name of its implementation, and comes
back as a typed key. bfloat16 is the format's own ``BF16``.
"""

from __future__ import annotations

import collections
import datetime
import importlib
import json
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.checkpoint import safetensors_format as fmt
from fnn.checkpoint.atomic import atomic_file

FORMAT = "fnn.checkpoint/1"


class CheckpointMismatchError(ValueError):
    """A checkpoint whose arrays do not fit the tree given as ``like``."""


class CheckpointInfo(NamedTuple):
    """What a checkpoint says about itself (`info`).

    Attributes:
      path: the file.
      config: the JSON-able config saved with it (``None`` if none).
      step, epoch: as given to `save` (``None`` if not).
      metrics: numbers saved with it (e.g. the epoch's ``val_loss``), ``{}`` if none.
      arrays: ``{path: (shape, dtype name)}`` of every array.
      versions: the fnn, jax, jaxlib and numpy versions that wrote it.
      saved_at: when (UTC, ISO 8601).
    """

    path: str
    config: Any
    step: int | None
    epoch: int | None
    metrics: dict
    arrays: dict
    versions: dict
    saved_at: str


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(type(node), "_fields")


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _join(prefix: str, part: Any) -> str:
    return f"{prefix}/{part}" if prefix else str(part)


def _encode(node: Any, name: str, arrays: dict) -> Any:
    """The JSON description of ``node``; its arrays go into ``arrays`` by path."""
    if node is None:
        return None
    if isinstance(node, (bool, int, float, str)) and not isinstance(node, np.generic):
        return {"value": node}
    if _is_namedtuple(node):
        cls = type(node)
        return {"namedtuple": f"{cls.__module__}:{cls.__qualname__}",
                "fields": [[f, _encode(v, _join(name, f), arrays)]
                           for f, v in zip(cls._fields, node)]}
    if isinstance(node, (list, tuple)):
        return {"list" if isinstance(node, list) else "tuple":
                [_encode(v, _join(name, i), arrays) for i, v in enumerate(node)]}
    if isinstance(node, dict):
        for k in node:
            if not isinstance(k, str):
                where = name or "the tree"
                raise TypeError(f"checkpoint.save: dict keys must be strings; {where} has "
                                f"key {k!r}")
        return {"dict": [[k, _encode(v, _join(name, k), arrays)] for k, v in node.items()]}
    if _is_key(node):
        arrays[name] = np.asarray(jax.random.key_data(node))
        return {"key": name, "impl": str(jax.random.key_impl(node))}
    custom = _custom_children(node)
    if custom is not None:
        cls = type(node)
        return {"node": f"{cls.__module__}:{cls.__qualname__}",
                "children": [[k, _encode(v, _join(name, k), arrays)] for k, v in custom]}
    if isinstance(node, (jax.Array, np.ndarray, np.generic)):
        if name in arrays:
            raise ValueError(f"checkpoint.save: two arrays would both be named {name!r}")
        arrays[name] = np.asarray(node)
        return {"array": name}
    raise TypeError(f"checkpoint.save: cannot store {name or 'the tree'} of type "
                    f"{type(node).__name__}; a checkpoint holds dicts, lists, tuples, "
                    f"NamedTuples, arrays, PRNG keys, None and Python numbers or strings")


def _custom_children(node: Any) -> list | None:
    """``[(name, child)]`` of another registered pytree node (e.g. a learning-rate
    schedule in an optimizer state); ``None`` for anything else."""
    if isinstance(node, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
        return None
    flat = jax.tree_util.default_registry.flatten_one_level_with_keys(node)
    if flat is None:
        return None
    return [(jax.tree_util.keystr((k,), simple=True, separator="/"), v) for k, v in flat[0]]


def _namedtuple_class(spec: str, fields: list[str]) -> type:
    """The saved NamedTuple class when it is fnn's own; otherwise one with its name and fields
    (a checkpoint never imports arbitrary modules)."""
    module, _, qualname = spec.partition(":")
    if module == "fnn" or module.startswith("fnn."):
        try:
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if isinstance(obj, type) and tuple(getattr(obj, "_fields", ())) == tuple(fields):
                return obj
        except (ImportError, AttributeError):
            pass
    return collections.namedtuple(qualname.split(".")[-1], fields)


def _decode(desc: Any, arrays: dict) -> Any:
    if desc is None:
        return None
    if "value" in desc:
        return desc["value"]
    if "array" in desc:
        return arrays[desc["array"]]
    if "key" in desc:
        return jax.random.wrap_key_data(jnp.asarray(arrays[desc["key"]]), impl=desc["impl"])
    if "namedtuple" in desc:
        cls = _namedtuple_class(desc["namedtuple"], [f for f, _ in desc["fields"]])
        return cls(*[_decode(v, arrays) for _, v in desc["fields"]])
    if "node" in desc:        # its class cannot be rebuilt without like=: its children
        return {k: _decode(v, arrays) for k, v in desc["children"]}
    if "list" in desc:
        return [_decode(v, arrays) for v in desc["list"]]
    if "tuple" in desc:
        return tuple(_decode(v, arrays) for v in desc["tuple"])
    return {k: _decode(v, arrays) for k, v in desc["dict"]}


def _versions() -> dict:
    import jaxlib

    import fnn
    return {"fnn": fnn.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "numpy": np.__version__}


def save(path: str | os.PathLike, tree: Any, *, config: Any = None, step: int | None = None,
         epoch: int | None = None, metrics: dict | None = None) -> str:
    """Write ``tree`` (and what describes it) to the safetensors file ``path``, atomically.

    Args:
      path: the file to write (conventionally ``*.safetensors``); its directory must exist.
      tree: params, a model state, an optimizer state, a `fnn.FitResult`, or any
        pytree of dicts, lists, tuples, NamedTuples, arrays (any dtype the format has,
        bfloat16 included), PRNG keys, ``None`` and Python numbers or strings.
      config: a JSON-able description of the run (kept as JSON in the file).
      step, epoch: counters to keep with it.
      metrics: ``{name: number}`` to keep with it (e.g. the epoch's ``val_loss``).

    Returns:
      the path written.

    Raises:
      TypeError: something the format cannot hold (the message names its path in the tree),
        or a config that is not JSON-able.

    A crash or kill during ``save`` leaves the file that was at ``path`` before
    (`fnn.checkpoint.atomic`).

    Examples:
      >>> import tempfile, os
      >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
      >>> params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.zeros(3)}
      >>> _ = fnn.checkpoint.save(path, params, config={"lr": 0.1}, epoch=4)
      >>> fnn.checkpoint.load(path)["w"].dtype, fnn.checkpoint.info(path).epoch
      (dtype(bfloat16), 4)
    """
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(tree, "", arrays)     # (keeps dicts in their own order)
    try:
        metadata = {"format": FORMAT, "structure": json.dumps(structure),
                    "config": json.dumps(config), "step": json.dumps(step),
                    "epoch": json.dumps(epoch), "metrics": json.dumps(metrics or {}),
                    "versions": json.dumps(_versions()),
                    "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    except TypeError as error:
        raise TypeError(f"checkpoint.save: config and metrics must be JSON-able: {error}") \
            from None
    head, ordered = fmt.header_and_arrays(arrays, metadata)
    with atomic_file(path) as f:
        f.write(head)
        for array in ordered:
            fmt.write_array(f, array)
    return os.fspath(path)


def _read(path: str | os.PathLike, arrays: bool) -> tuple[dict, dict, dict]:
    """``(header, metadata, arrays)`` of a checkpoint, checked."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint: no file {os.fspath(path)!r}") from None
    with f:
        header, start, _ = fmt.read_header(path, f)
        meta = header.get("__metadata__") or {}
        if meta.get("format") != FORMAT:
            raise fmt.CorruptCheckpointError(
                f"{path}: a safetensors file, but not one written by fnn.checkpoint.save (its "
                f"metadata has no {FORMAT!r} format entry); read it with safetensors itself")
        try:
            meta = {k: (v if k == "saved_at" else json.loads(v)) for k, v in meta.items()
                    if k != "format"}
        except ValueError as error:
            raise fmt.CorruptCheckpointError(f"{path}: corrupt checkpoint metadata: {error}") \
                from None
        data = fmt.read_arrays(path, f, header, start) if arrays else {}
    return header, meta, data


def info(path: str | os.PathLike) -> CheckpointInfo:
    """What the checkpoint at ``path`` holds, from its header only (no array is read).

    Raises:
      FileNotFoundError: no such file.
      CorruptCheckpointError: truncated, corrupt, or not written by `save`.
    """
    header, meta, _ = _read(path, arrays=False)
    arrays = {name: (tuple(e["shape"]), str(fmt.DTYPES[e["dtype"]]))
              for name, e in header.items() if name != "__metadata__"}
    return CheckpointInfo(os.fspath(path), meta.get("config"), meta.get("step"),
                          meta.get("epoch"), meta.get("metrics") or {}, arrays,
                          meta.get("versions") or {}, meta.get("saved_at", ""))


def _children(node: Any, name: str) -> list | None:
    """``[(child path, child)]`` of a container (``None`` for a leaf or ``None``)."""
    if _is_namedtuple(node):
        return [(_join(name, f), v) for f, v in zip(type(node)._fields, node)]
    if isinstance(node, (list, tuple)):
        return [(_join(name, i), v) for i, v in enumerate(node)]
    if isinstance(node, dict):
        return [(_join(name, k), v) for k, v in node.items()]
    if node is None or isinstance(node, (bool, int, float, str)):
        return None
    custom = _custom_children(node)
    return None if custom is None else [(_join(name, k), v) for k, v in custom]


def _by_path(tree: Any, name: str = "", out: dict | None = None) -> dict:
    """``{path: leaf}`` of every array, key and Python value in ``tree``."""
    out = {} if out is None else out
    children = _children(tree, name)
    if children is None:
        if tree is not None:
            out[name] = tree
        return out
    for child_name, child in children:
        _by_path(child, child_name, out)
    return out


def _rebuild(like: Any, name: str, values: dict) -> Any:
    """``like``'s structure and classes with the leaves of ``values`` (by path)."""
    children = _children(like, name)
    if children is None:
        return None if like is None else values[name]
    parts = [_rebuild(child, child_name, values) for child_name, child in children]
    if _is_namedtuple(like):
        return type(like)(*parts)
    if isinstance(like, (list, tuple)):
        return type(like)(parts)
    if isinstance(like, dict):
        return dict(zip(like.keys(), parts))
    one_level = jax.tree.structure(like, is_leaf=lambda node: node is not like)
    return one_level.unflatten(parts)


def _describe(leaf: Any) -> tuple:
    """``(shape, dtype name)`` of an array, key (its key data) or shape struct; Python
    values are ``("value", type name)``."""
    if isinstance(leaf, (bool, int, float, str)):
        return ("value", type(leaf).__name__)
    if _is_key(leaf):
        data = jax.eval_shape(jax.random.key_data, leaf)
        return tuple(data.shape), str(data.dtype)
    return (tuple(np.shape(leaf)),
            str(np.dtype(getattr(leaf, "dtype", None) or np.asarray(leaf).dtype)))


def mismatch_report(path: str, expected: dict, found: dict) -> str | None:
    """A readable diff of two ``{array path: (shape, dtype)}`` tables (``None``: they agree)."""
    missing = [n for n in expected if n not in found]
    unexpected = [n for n in found if n not in expected]
    mismatched = [n for n in expected if n in found and tuple(expected[n]) != tuple(found[n])]
    if not (missing or unexpected or mismatched):
        return None
    lines = [f"checkpoint {path} does not fit the tree given as like= "
             f"({len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} "
             f"mismatched):"]

    def show(entry):
        return f"a Python {entry[1]}" if entry[0] == "value" else f"{entry[1]}{list(entry[0])}"
    lines += [f"  missing     {n}: expected {show(expected[n])}" for n in missing[:20]]
    lines += [f"  unexpected  {n}: in the file {show(found[n])}" for n in unexpected[:20]]
    lines += [f"  mismatched  {n}: expected {show(expected[n])}, file has {show(found[n])}"
              for n in mismatched[:20]]
    hidden = max(0, len(missing) - 20) + max(0, len(unexpected) - 20) + max(
        0, len(mismatched) - 20)
    if hidden:
        lines.append(f"  ... and {hidden} more")
    return "\n".join(lines)


def load(path: str | os.PathLike, like: Any = None) -> Any:
    """The tree saved at ``path``.

    Args:
      path: a file written by `save`.
      like: a tree of the expected shape (params from ``model.init``, a FitResult, or
        ``jax.eval_shape`` structs): every array path, shape and dtype must match, and the
        result has ``like``'s structure and classes. ``None``: the saved structure (fnn's
        own NamedTuples come back as themselves, others as namedtuples of the same name;
        other pytree nodes, such as a learning-rate schedule in an optimizer state, as
        dicts of their children: pass ``like=`` to get them back as themselves).

    Returns:
      the tree, with numpy arrays of the saved dtypes (float64 and bfloat16 included;
      ``jax.device_put`` places them) and typed PRNG keys where keys were saved.

    Raises:
      FileNotFoundError: no such file.
      CorruptCheckpointError: truncated, corrupt, or not written by `save`.
      CheckpointMismatchError: the file does not fit ``like``; the message lists every
        missing, unexpected and mismatched array (path, expected, found).
    """
    _, meta, arrays = _read(path, arrays=True)
    tree = _decode(meta["structure"], arrays)
    return tree if like is None else conform(tree, like, os.fspath(path))


def conform(tree: Any, like: Any, path: str = "the checkpoint") -> Any:
    """``tree`` (as `load` returns it) in ``like``'s structure and classes, after
    checking every array path, shape and dtype (`CheckpointMismatchError` with the
    diff otherwise); ``path`` names the source in the message."""
    found = _by_path(tree)
    expected = _by_path(like)
    report = mismatch_report(path, {k: _describe(v) for k, v in expected.items()},
                             {k: _describe(v) for k, v in found.items()})
    if report is not None:
        raise CheckpointMismatchError(report)
    return _rebuild(like, "", found)

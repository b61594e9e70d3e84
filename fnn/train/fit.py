"""``fnn.fit``: the whole training workflow in one call.

``fit`` checks its inputs (before compiling anything), puts the data on the
device once, then for each epoch runs one compiled epoch
(:func:`fnn.train.make_epoch`), evaluates the validation data
(:func:`fnn.evaluate`), and brings the epoch's numbers to the host once to
fill the history, check for NaN, drive early stopping, callbacks and the
progress bar.

Randomness, exactly (so a hand-written loop can reproduce a fit)::

    init_key, loop_key = jax.random.split(key)
    params, state = model.init(init_key, x)           # only when params is None
    epoch_key = jax.random.fold_in(loop_key, epoch)   # epoch = 0, 1, ...
    # then make_epoch: shuffle_key, steps_key = jax.random.split(epoch_key), ...
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from fnn.layers.function import as_layer
from fnn.train import checks, data_parallel, dispatch, loss_scaling
from fnn.train import resume as resume_
from fnn.train import sample_weights, streaming
from fnn.train.callbacks import Callback, Control, call_callback
from fnn.train.config import build_config, donate_buffers
from fnn.train.data import num_examples, split_off_validation
from fnn.train.early_stopping import EarlyStopping
from fnn.train.epoch import EpochConfig, epoch_function, plan, skipped_count
from fnn.train.evaluation import evaluation_function
from fnn.train import streamed_evaluation as streamed
from fnn.train.streamed_epoch import streamed_epoch
from fnn.train.initial_values import check_opt_state, initial_params, initial_structs, own_arrays
from fnn.train.precision import get_policy
from fnn.train.progress import EpochBar, resolve_verbose, wants_bar
from fnn.validation import check_int


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      params: the trained parameters (the best epoch's with
        ``EarlyStopping(restore_best=True)``).
      state: the model state (``{}`` for stateless models), same epoch as ``params``.
      opt_state: the optimizer state, same epoch (continue training from it).
      history: ``{name: [one Python float per epoch]}``, in this order:
        ``"loss"``, each metric (each output's ``"<output>_loss"`` first), ``"val_loss"``, ``"val_<metric>"``,
        ``"learning_rate"`` and, when the optimizer skips non-finite steps,
        ``"skipped"`` (per epoch).
    """

    params: Any
    state: Any
    opt_state: Any
    history: dict


def _check_validation(x: Any, y: Any, xv: Any, yv: Any) -> None:
    for part, train, val in (("x", x, xv), ("y", y, yv)):
        a = jax.tree.map(lambda t: np.shape(t)[1:], train)
        b = jax.tree.map(lambda t: np.shape(t)[1:], val)
        if a != b:
            raise ValueError(f"fit: validation_data {part} has example shape {b} but the "
                             f"training {part} has {a}")


def _check_monitor(early_stopping: Any, cfg: Any, has_validation: bool) -> None:
    if early_stopping is None:
        return
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError("fit: early_stopping must be a fnn.EarlyStopping, got "
                        f"{type(early_stopping).__name__}")
    names = list(cfg.logged_names())
    known = names + (["val_" + n for n in names if n != "penalty"] if has_validation else [])
    if early_stopping.monitor not in known + ["learning_rate"]:
        hint = " (pass validation_data to monitor 'val_...')" if (
            early_stopping.monitor.startswith("val_") and not has_validation) else ""
        raise ValueError(f"fit: EarlyStopping monitors {early_stopping.monitor!r}, which fit "
                         f"does not compute; known: {known}{hint}")


def _stop_message(rule: Any, tracker: Any, by_rule: bool, epoch: int, epochs: int,
                  restored: bool) -> str:
    """Why training ended before ``epochs``, and which epoch's weights are returned
    (epochs counted from 1, as the bar counts them)."""
    if not by_rule:
        return f"fit: a callback stopped training after epoch {epoch + 1} of {epochs}"
    text = (f"fit: stopped early after epoch {epoch + 1} of {epochs}: {rule.monitor} did not "
            f"improve{f' by more than {rule.min_delta:g}' if rule.min_delta else ''} for "
            f"{rule.patience + 1} epoch{'s' if rule.patience else ''}")
    if restored:
        return (text + f"; restored the weights of epoch {tracker.best_epoch + 1} (best "
                f"{rule.monitor} {tracker.best:.4g})")
    return text + "; returning this epoch's weights"


def _raise_if_not_finite(numbers: dict, epoch: int, steps: int, batch_size: Any) -> None:
    """Pop the epoch's NaN checks from ``numbers``; raise unless the optimizer skips such steps."""
    bad_step = int(numbers.pop("nonfinite_step"))
    params_finite = bool(numbers.pop("params_finite"))
    if "skipped" in numbers:
        return
    if bad_step >= 0:
        raise FloatingPointError(
            f"fit: the loss became NaN or infinite at epoch {epoch} (counting from 0), step "
            f"{bad_step} of that epoch ({steps} steps per epoch, batch_size={batch_size}); the "
            "parameters are no longer usable. Lower the learning rate, check x and y for "
            "NaN/inf, clip the gradients (fnn.optim.clip_by_global_norm), or wrap the optimizer "
            "in fnn.optim.skip_nonfinite to skip such steps.")
    if not params_finite:
        raise FloatingPointError(
            f"fit: the parameters became NaN or infinite during epoch {epoch} (counting from 0) "
            "while the loss stayed finite (an activation such as relu maps NaN to 0 and hides "
            "it). Check x and y for NaN/inf, lower the learning rate, or wrap the optimizer in "
            "fnn.optim.skip_nonfinite to skip such steps.")


def _check_values(cfg: Any, out: Any, x: Any, y: Any, data_name: str = "") -> None:
    """The checks of concrete values (label ranges, a layer's input values such as
    Embedding ids): once for data in memory, per block for streamed data."""
    checks.check_label_range("fit", cfg, y, out, data_name)
    checks.check_input_values("fit", cfg.model, x, data_name or "data")


def fit(model: Any, loss: Any, optimizer: Any, data: Any, *, epochs: int,
        batch_size: int | None, key: jax.Array, params: Any = None, state: Any = None,
        opt_state: Any = None, validation_data: Any = None, metrics: Sequence[Any] = (),
        loss_weights: Any = None, early_stopping: EarlyStopping | None = None,
        callbacks: Sequence[Callable[[int, dict], Any]] = (), progress: bool = True,
        augment: Callable | None = None, precision: Any = None, loss_scale: Any = None,
        accumulation_steps: int = 1, drop_remainder: bool = False,
        validation_batch_size: int | None = None, shuffle: bool = True,
        strategy: str | None = None, steps_per_dispatch: int | None = None,
        mesh: Any = None, param_sharding: Any = None, checkpoint_dir: Any = None,
        checkpoint_every: int = 1, resume: bool = False, penalty: Any = None,
        verbose: int | None = None, validation_split: float | None = None,
        sample_weight: Any = None, class_weight: Any = None, stream: bool | None = None,
        steps_per_epoch: int | None = None, prefetch: int = 2) -> FitResult:
    """Train ``model`` on ``data`` for ``epochs`` passes; see ``docs/training.md``.

    Args:
      model: an fnn layer, or a pure function ``apply(params, x)`` (then ``params=``
        is required).
      loss: a loss name (``"mse"``, ``"sparse_softmax_cross_entropy"``, ...) or a
        callable ``loss(predictions, targets) -> scalar`` (a mean over the batch);
        for a model with several outputs (:class:`fnn.Parallel` heads) one per
        output, ``{"digit": ..., "parity": ...}`` (a list for tuple outputs),
        with ``y`` of the same structure; see :mod:`fnn.train.outputs`.
      optimizer: a ``fnn.optim`` optimizer, e.g. ``fnn.optim.adam(1e-3)``.
      data: ``(x, y)``, numpy or JAX arrays with a leading example axis: put on the
        device once; or memory-mapped arrays (``np.load(path, mmap_mode="r")``) larger
        than :data:`fnn.train.streaming.STREAM_THRESHOLD_BYTES`, streamed batch by
        batch in the same order (the same numbers); or an iterable of ``(x, y)``
        batches (a generator function, a Grain or PyTorch ``DataLoader``, a list), read
        in its own order, one pass per epoch (:mod:`fnn.train.streaming`,
        ``docs/data.md``).
      epochs: passes over the data (``>= 1``).
      batch_size: ``None``: batch gradient descent (one step per epoch on all
        the data); ``1``: stochastic gradient descent; ``b``: mini-batch
        gradient descent (a fresh shuffle each epoch, see ``shuffle``; the
        last partial batch is a smaller step of its own unless ``drop_remainder``).
      key: a PRNG key; all randomness derives from it (module docstring).
      params, state: start from these (fine-tuning) instead of ``model.init``.
      opt_state: continue from this optimizer state (default ``optimizer.init(params)``).
      validation_data: ``(x_dev, y_dev)`` evaluated after every epoch (``val_*``).
      validation_split: instead of ``validation_data``, hold out this fraction of the
        examples, the *last* ones, before any shuffling (as Keras does; shuffle the data
        first if its order is not random): ``round(n * validation_split)`` of them.
      sample_weight, class_weight: a weight per example ``(n,)`` and/or per class
        (``{class: weight}``); the loss becomes ``(1/N) sum_i w_i l_i``, exactly under
        every batching (:mod:`fnn.train.sample_weights`); metrics and validation are
        not weighted.
      metrics: metric names or callables ``metric(predictions, targets) -> scalar``;
        accuracy, precision, recall and F1 read binary outputs as logits or
        probabilities as the loss takes them (:func:`fnn.losses.output_kind`);
        with a loss per output, ``{output: [metric, ...]}`` (history names
        ``"<output>_<metric>"``, next to each part's ``"<output>_loss"``).
      loss_weights: with a loss per output, the weight of each
        (``J = sum_k w_k L_k``; default all 1), in the loss's structure.
      early_stopping: an :class:`fnn.EarlyStopping` rule.
      callbacks: functions ``callback(epoch, logs)`` called after every epoch
        with the epoch index and a dict of Python floats (this epoch's history
        entries); returning ``True`` stops training after this epoch. Or
        :class:`fnn.train.Callback` objects, which can also change the optimizer's
        hyperparameters between epochs and stop (:mod:`fnn.train.callbacks`:
        ``ReduceLROnPlateau``, ``LearningRateScheduler``, ``ModelCheckpoint``).
      progress: show a tqdm bar (only when stderr is a terminal).
      verbose: as Keras's: ``0`` silent, ``1`` a bar (on a terminal; the numbers on the
        line under it), ``2`` one line per epoch on stdout; overrides ``progress``
        (:class:`fnn.train.progress.EpochBar`).
      augment: ``augment(key, x) -> x`` applied to every training batch.
      precision: a policy (``"mixed_bfloat16"``, ``"mixed_float16"``, a
        :class:`fnn.train.precision.Policy`); params and optimizer stay in the
        policy's ``param_dtype``.
      loss_scale: a loss scale (default: ``DynamicLossScale()`` when computing
        in float16, none otherwise); the optimizer is wrapped with
        :func:`fnn.train.loss_scaled` and its steps with overflowing gradients skipped.
      accumulation_steps: micro-batches per batch (gradient accumulation).
      drop_remainder: skip the last partial batch of each epoch.
      validation_batch_size: batch size of the validation pass (``None``: all at once).
      shuffle: a fresh order of the examples each epoch
        (:func:`fnn.train.shuffle.shuffled_indices`); ``False`` keeps the
        data's own order (for data whose order matters).
      strategy, steps_per_dispatch: how steps are dispatched (expert override,
        see :mod:`fnn.train.dispatch`).
      mesh: data parallel training over a ``jax.sharding.Mesh`` with a ``"data"``
        axis (e.g. ``jax.make_mesh((n,), ("data",))``): each batch is split over
        the axis's devices, parameters and data are replicated, and the numbers
        are those of one device (BatchNorm's statistics are the whole batch's);
        see :mod:`fnn.train.data_parallel`.
      param_sharding: with ``mesh``, split parameters over the mesh's axes too:
        ``{path pattern: PartitionSpec}`` (e.g. ``{"*/w": PartitionSpec(None, "model")}``
        on a ``("data", "model")`` mesh) or ``fn(path) -> PartitionSpec | None``; the
        optimizer state of a parameter follows it, the rest stays replicated
        (:func:`fnn.train.data_parallel.param_specs`).
      checkpoint_dir: a directory (or a :class:`fnn.checkpoint.Manager`) to write a
        checkpoint to after every ``checkpoint_every``-th epoch, the last one, and
        one where training stops (the newest 3 are kept); see :mod:`fnn.train.resume`.
      checkpoint_every: epochs between checkpoints (``>= 1``).
      resume: continue the run whose checkpoints are in ``checkpoint_dir`` from its
        newest one (bit for bit the uninterrupted run on CPU); without it, a
        ``checkpoint_dir`` that already holds checkpoints is an error.
      penalty: a weight penalty added to every step's loss,
        ``J = L + Omega(params)`` (``fnn.regularizers.l2(1e-4, on="*/w")``, ``l1``,
        ``elastic_net``); the history's ``"loss"`` stays the data loss (comparable
        with ``"val_loss"``) and ``"penalty"`` is ``Omega`` (mean over the epoch's steps).
      stream: ``None``: stream arrays larger than the threshold (and any iterable);
        ``True``/``False``: stream the ``(x, y)`` arrays, or put them on the device whole.
      steps_per_epoch: with an iterable, the batches per epoch, read on from one
        iterator across epochs (an endless iterable works); ``None``: one pass.
      prefetch: with streamed data, the blocks of batches read ahead by a background
        thread (``>= 1``).

    Returns:
      A :class:`FitResult` ``(params, state, opt_state, history)``.

    Raises:
      ValueError: bad arguments or shapes, before anything is compiled.
      FloatingPointError: the loss became NaN/inf (names the epoch and step),
        unless the optimizer skips such steps.

    Example:
      >>> model = fnn.Sequential([fnn.Dense(16), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1); y = x ** 2
      >>> result = fnn.fit(model, "mse", fnn.optim.adam(0.03), (x, y), epochs=50,
      ...                  batch_size=16, key=jax.random.key(0), progress=False)
      >>> len(result.history["loss"]), result.history["loss"][-1] < 0.02
      (50, True)
    """
    model = as_layer(model)
    checks.check_argument_order("fit", loss, optimizer, data)
    kind = streaming.kind_of("fit", data, stream)
    check_int("fit", "prefetch", prefetch)
    check_int("fit", "steps_per_epoch", steps_per_epoch, allow_none=True)
    source = None
    if kind == "iterable":
        source = streaming.open_iterable("fit", data, steps_per_epoch, epochs, batch_size, mesh,
                                         validation_split, sample_weight, class_weight)
        x, y = checks.check_data("fit", source.first(), "the first batch")
        batch_size, shuffle, drop_remainder = num_examples(x), False, False
    else:
        if steps_per_epoch is not None:
            raise ValueError("fit: steps_per_epoch is for an iterable of batches; with (x, y) "
                             "arrays an epoch is one pass over them")
        x, y = checks.check_data("fit", data, "data")
        if kind == "array" and batch_size is None:
            raise ValueError("fit: streamed data needs a batch_size (batch_size=None trains "
                             "on all the examples in one step, so they would all be on the "
                             "device at once); pass stream=False to load them")
    if validation_split is not None:
        full = num_examples(x)
        (x, y), validation_data = split_off_validation(x, y, validation_split,
                                                       validation_data, mesh)
        if sample_weight is not None:      # given for all the data, as Keras takes it
            if np.shape(sample_weight) != (full,):
                raise ValueError(f"fit: sample_weight must have shape ({full},), one weight "
                                 f"per example, got {np.shape(sample_weight)}")
            sample_weight = np.asarray(sample_weight)[:num_examples(x)]
    n = num_examples(x)
    if mesh is not None and kind == "memory":   # several processes: x is this one's shard
        n = data_parallel.global_examples("fit", n)
    check_int("fit", "epochs", epochs)
    verbose = resolve_verbose("fit", verbose, progress)
    check_int("fit", "batch_size", batch_size, allow_none=True, maximum=n,
              maximum_name="the number of examples")
    checks.check_key("fit", key)
    scale = loss_scaling.for_policy(None if precision is None else get_policy(precision),
                                    loss_scale)
    opt, opt_state = loss_scaling.with_loss_scale(optimizer, opt_state, scale)
    cfg = build_config(model, loss, opt, metrics=metrics, loss_weights=loss_weights,
                       augment=augment, precision=precision,
                       accumulation_steps=accumulation_steps,
                       max_accumulation_steps=batch_size or n, penalty=penalty)
    _check_monitor(early_stopping, cfg, validation_data is not None)
    callbacks = () if callbacks is None else tuple(callbacks)
    for callback in callbacks:
        if not callable(callback) and not isinstance(callback, Callback):
            raise TypeError(f"fit: callbacks must be functions callback(epoch, logs) or "
                            f"fnn.train.Callback objects, got {callback!r}")
    val_source = None
    if validation_data is not None:
        check_int("fit", "validation_batch_size", validation_batch_size, allow_none=True)
        val_source = streamed.open_source("fit", validation_data, stream, epochs,
                                          name="validation_data")
        if val_source is not None:
            validation_batch_size = validation_batch_size or batch_size
            streamed.check_batch_size("fit", val_source, validation_batch_size,
                                      "validation_batch_size")
            validation_data = streamed.first_batch(val_source, validation_batch_size)
        xv, yv = checks.check_data("fit", validation_data, "validation_data")
        _check_validation(x, y, xv, yv)
    manager = resume_.manager_for("fit", checkpoint_dir, checkpoint_every)
    mode, chunk = dispatch.resolve(cfg.model, strategy, steps_per_dispatch)
    full, _, remainder = plan(n, batch_size, drop_remainder)
    if mesh is not None:
        data_parallel.check_mesh("fit", mesh, batch_size or n, remainder)
        mesh = data_parallel.auto_axes(mesh)
    elif param_sharding is not None:
        raise ValueError("fit: param_sharding needs a mesh= to place the parameters on")

    # Every check runs on shapes only (jax.eval_shape): nothing is computed or compiled
    # before the inputs are known to fit together.
    param_structs, state_structs = initial_structs(cfg.model, params, state, key, x)
    out = checks.check_shapes("fit", cfg, param_structs, state_structs, x, y)
    if validation_data is not None:
        checks.check_shapes("fit", cfg, param_structs, state_structs, xv, yv, train=False)
    check_values = functools.partial(_check_values, cfg, out)
    if kind == "memory":
        check_values(x, y)
        checks.check_finite_inputs("fit", x)
    if val_source is not None:
        streaming.set_value_check(val_source, functools.partial(_check_values, cfg, out,
                                                                data_name="validation_data"))
    elif validation_data is not None:
        _check_values(cfg, out, xv, yv, "validation_data")
        checks.check_finite_inputs("fit", xv, "validation_data")
    opt_state = check_opt_state(opt, opt_state, param_structs)
    if hasattr(penalty, "selected"):
        penalty.selected(param_structs)          # its path patterns, before compiling

    val_cfg = cfg
    weights = sample_weights.example_weights("fit", y, n, sample_weight, class_weight,
                                              sample_weights.classes_of(out))
    if weights is not None:
        sample_weights.check_weighted_loss("fit", cfg.loss_fn)
        cfg, y = sample_weights.weighted(cfg), (y, weights)
    params, state = initial_params(cfg.model, params, state, key, x, state_structs)
    if opt_state is None:
        opt_state = opt.init(params)
    resumed = None
    if manager is not None:
        run = resume_.identity(key, n, batch_size, bool(drop_remainder), bool(shuffle))
        resumed = resume_.restore("fit", manager, resume, run, (params, state, opt_state))
        if resumed is not None:
            params, state, opt_state = jax.device_put(resumed[1:4])
    if kind == "memory":
        data = (jax.device_put((x, y)) if mesh is None
                else data_parallel.put_data(mesh, (x, y)))
    else:
        if mesh is not None:                # (an iterable refuses a mesh)
            data_parallel.check_same_data("fit", (x, y))
        data = checks.struct(jax.tree.map(lambda a: a[:min(batch_size or n, n)], (x, y)))
        source = streaming.training_source("fit", source, (x, y), check_values,
                                           weights is not None)
        if resumed is not None:
            resume_.reposition(source, resumed.stream)
    if mesh is not None:
        specs = data_parallel.param_specs(mesh, param_sharding, params)
        params = data_parallel.replicate(mesh, params, specs)
        opt_state = data_parallel.replicate(mesh, opt_state, data_parallel.opt_state_specs(
            opt_state, params, specs))
        state = data_parallel.replicate(mesh, state)
    # Donation saves accelerator memory; on CPU it measured no faster, and it costs a copy
    # of everything donated (the caller's arrays must survive), so CPU does not donate.
    donate = donate_buffers()
    params, state, opt_state = own_arrays((params, state, opt_state), copy=donate)
    ecfg = EpochConfig(cfg, batch_size, bool(drop_remainder), mode, chunk, bool(shuffle), mesh)
    run_epoch = epoch_function(ecfg, donate) if source is None else functools.partial(
        streamed_epoch, ecfg, donate, source, prefetch, on_steps=lambda *a: bar.steps(*a))
    validate = None
    if val_source is not None:
        validate = functools.partial(streamed.streamed_scores, val_cfg, val_source,
                                     validation_batch_size, prefetch=prefetch, mesh=mesh)
    elif validation_data is not None:
        run_validation = evaluation_function(val_cfg.model, val_cfg.loss_fn,
                                             val_cfg.metric_fns, validation_batch_size,
                                             cfg.policy)
        validation = (jax.device_put((xv, yv)) if mesh is None
                      else data_parallel.put_data(mesh, (xv, yv)))

        def validate(params: Any, state: Any, epoch: int) -> dict:
            return run_validation(params, state, *validation)

    steps = (full + (remainder > 0) if source is None or source.examples is not None
             else steps_per_epoch or "an unknown number of")
    names, extras = list(cfg.logged_names()), ["learning_rate", "skipped"]
    history: dict[str, list[float]] = {} if resumed is None else {
        name: list(values) for name, values in resumed.history.items()}
    skipped_before = skipped_count(opt_state)
    skipped_before = 0 if skipped_before is None else int(skipped_before)

    def record(epoch: int, numbers: dict, val_numbers: dict) -> dict:
        """Bring epoch ``epoch``'s numbers to the host, check them, add them to the history."""
        nonlocal skipped_before
        numbers, val_numbers = jax.device_get((numbers, val_numbers))
        _raise_if_not_finite(numbers, epoch, steps, batch_size)
        # Ordered for people: loss, metrics, validation, learning rate, skipped steps.
        logs = {name: float(numbers[name]) for name in names if name in numbers}
        logs.update({"val_" + name: float(val_numbers[name]) for name in names
                     if name in val_numbers})
        logs.update({name: float(numbers[name]) for name in extras if name in numbers})
        if "skipped" in logs:
            logs["skipped"], skipped_before = logs["skipped"] - skipped_before, logs["skipped"]
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        bar.update(logs)
        return logs

    # Without early stopping, callbacks or checkpoints nothing needs epoch e's numbers to
    # go on, so epoch e + 1 is dispatched before they are read: the host's work (transfer,
    # checks, history, progress bar) overlaps the device's next epoch.
    pipelined = early_stopping is None and not callbacks and manager is None
    tracker = None if early_stopping is None else early_stopping.init()
    best, pending, first = None, None, 0
    if resumed is not None:
        first = resumed.start if not resumed.stopped else epochs
        tracker = resumed.tracker if early_stopping is not None else None
        best = None if resumed.best is None else own_arrays(jax.device_put(resumed.best),
                                                            copy=donate)
        if (best is None and tracker is not None and early_stopping.restore_best
                and tracker.best_epoch == first - 1 and first < epochs):
            # The checkpoint's own epoch was the best (its copy was skipped as the last).
            best = own_arrays((params, state, opt_state), copy=True)
    epoch = first - 1
    objects = [c for c in callbacks if isinstance(c, Callback)]
    control = Control(params, state, opt_state)

    def act(hook: str, *args: Any) -> None:
        """Run ``hook`` of every callback object; take any hyperparameters it set."""
        nonlocal opt_state
        control.params, control.state, control.opt_state = params, state, opt_state
        logs = args[1] if len(args) > 1 else None
        for callback in objects:
            call_callback(getattr(callback, hook), hook, args[0] if args else None, logs,
                          *args, control)
        if control.changed:
            opt_state, control.changed = control.opt_state, False
            if mesh is not None:
                opt_state = data_parallel.replicate(mesh, opt_state, data_parallel.
                                                    opt_state_specs(opt_state, params, specs))
    act("on_train_begin")
    bar = EpochBar(epochs, wants_bar(verbose == 1), done=min(first, epochs), verbose=verbose)
    rule_stopped = False
    try:
        for epoch in range(first, epochs):
            act("on_epoch_begin", epoch)
            params, state, opt_state, numbers = run_epoch(params, state, opt_state, data, key,
                                                          epoch)
            val_numbers = {} if validate is None else validate(params, state, epoch=epoch)
            if pipelined:
                if pending is not None:
                    record(*pending)
                pending = (epoch, numbers, val_numbers)
                continue
            logs = record(epoch, numbers, val_numbers)
            stop = False
            if early_stopping is not None:
                tracker, improved, stop = early_stopping.update(
                    tracker, epoch, logs[early_stopping.monitor])
                rule_stopped = stop
                if improved and early_stopping.restore_best:
                    # The last epoch needs no copy: nothing runs after it.
                    best = None if epoch == epochs - 1 else own_arrays(
                        (params, state, opt_state), copy=donate)
            for callback in callbacks:
                if not isinstance(callback, Callback):
                    stop = bool(call_callback(callback, "callback(epoch, logs)", epoch, logs,
                                              epoch, dict(logs))) or stop
            act("on_epoch_end", epoch, dict(logs))
            stop = stop or control.stop_requested
            if manager is not None and (stop or epoch == epochs - 1
                                        or (epoch + 1) % checkpoint_every == 0):
                resume_.write(manager, run, epoch, params, state, opt_state, history, tracker,
                              best, stop, logs, resume_.position(source, epoch))
            if stop:
                break
        if pending is not None:
            record(*pending)
        if rule_stopped or (first < epochs and epoch < epochs - 1):
            bar.message(_stop_message(early_stopping, tracker, rule_stopped, epoch, epochs,
                                      best is not None and tracker.best_epoch != epoch))
    finally:
        bar.close()
    if best is not None and tracker.best_epoch != epoch:
        params, state, opt_state = best
    return FitResult(params, state, opt_state, history)

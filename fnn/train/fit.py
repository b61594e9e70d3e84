"""``fnn.fit``: the whole training workflow in one call.

``fit`` checks its inputs (before compiling anything), puts the data on the
device once, then for each epoch runs one compiled epoch
(`fnn.train.make_epoch`), evaluates the validation data
(`fnn.evaluate`), and brings the epoch's numbers to the host once to
fill the history, check for NaN, drive early stopping, callbacks and the
progress bar.

Randomness, exactly (so a hand-written loop can reproduce a fit)::

    init_key, loop_key = jax.random.split(key)
    params, state = model.init(init_key, x)           # only when params is None
    epoch_key = jax.random.fold_in(loop_key, epoch)   # epoch = 0, 1, ...
    # then make_epoch: shuffle_key, steps_key = jax.random.split(epoch_key), ...
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax

from fnn.layers.function import as_layer
from fnn.train.data import checks
from fnn.train.data.inputs import Batching, Validation, open_inputs
from fnn.train.epoch.placement import check_devices, place
from fnn.train.epoch.runner import epoch_runner
from fnn.train.loop import resume as resume_
from fnn.train.loop.early_stopping import EarlyStopping
from fnn.train.loop.history import check_callbacks, check_monitor
from fnn.train.loop.initial_values import starting_values
from fnn.train.loop.progress import resolve_verbose
from fnn.train.loop.run import HostOptions, run_epochs
from fnn.train.step import monitor as monitor_
from fnn.train.step.build import StepOptions, build_step


class FitResult(NamedTuple):
    """What `fit` returns.

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
        steps_per_epoch: int | None = None, prefetch: int = 2,
        monitor: Any = None) -> FitResult:
    """Train ``model`` on ``data`` for ``epochs`` passes; see ``docs/training.md``.

    Args:
      model: an fnn layer, or a pure function ``apply(params, x)`` (then ``params=``
        is required).
      loss: a loss name (``"mse"``, ``"sparse_softmax_cross_entropy"``, ...) or a
        callable ``loss(predictions, targets) -> scalar`` (a mean over the batch);
        for a model with several outputs (`fnn.Parallel` heads) one per
        output, ``{"digit": ..., "parity": ...}`` (a list for tuple outputs),
        with ``y`` of the same structure; see `fnn.train.step.outputs`.
      optimizer: a ``fnn.optim`` optimizer, e.g. ``fnn.optim.adam(1e-3)``.
      data: ``(x, y)``, numpy or JAX arrays with a leading example axis: put on the
        device once; or memory-mapped arrays (``np.load(path, mmap_mode="r")``) larger
        than `fnn.train.data.streaming.STREAM_THRESHOLD_BYTES`, streamed batch by
        batch in the same order (the same numbers); or an iterable of ``(x, y)``
        batches (a generator function, a Grain or PyTorch ``DataLoader``, a list), read
        in its own order, one pass per epoch (`fnn.train.data.streaming`,
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
        every batching (`fnn.train.data.sample_weights`); metrics and validation are
        not weighted.
      metrics: metric names or callables ``metric(predictions, targets) -> scalar``;
        accuracy, precision, recall and F1 read binary outputs as logits or
        probabilities as the loss takes them (`fnn.losses.output_kind`);
        with a loss per output, ``{output: [metric, ...]}`` (history names
        ``"<output>_<metric>"``, next to each part's ``"<output>_loss"``).
      loss_weights: with a loss per output, the weight of each
        (``J = sum_k w_k L_k``; default all 1), in the loss's structure.
      early_stopping: an `fnn.EarlyStopping` rule.
      callbacks: functions ``callback(epoch, logs)`` called after every epoch
        with the epoch index and a dict of Python floats (this epoch's history
        entries); returning ``True`` stops training after this epoch. Or
        `fnn.train.Callback` objects, which can also change the optimizer's
        hyperparameters between epochs and stop (`fnn.train.loop.callbacks`:
        ``ReduceLROnPlateau``, ``LearningRateScheduler``, ``ModelCheckpoint``).
      progress: show a tqdm bar (only when stderr is a terminal).
      verbose: as Keras's: ``0`` silent, ``1`` a bar (on a terminal; the numbers on the
        line under it), ``2`` one line per epoch on stdout; overrides ``progress``
        (`fnn.train.loop.progress.EpochBar`).
      augment: ``augment(key, x) -> x`` applied to every training batch.
      precision: a policy (``"mixed_bfloat16"``, ``"mixed_float16"``, a
        `fnn.train.step.precision.Policy`); params and optimizer stay in the
        policy's ``param_dtype``.
      loss_scale: a loss scale (default: ``DynamicLossScale()`` when computing
        in float16, none otherwise); the optimizer is wrapped with
        `fnn.train.loss_scaled` and its steps with overflowing gradients skipped.
      accumulation_steps: micro-batches per batch (gradient accumulation).
      drop_remainder: skip the last partial batch of each epoch.
      validation_batch_size: batch size of the validation pass (``None``: all at once).
      shuffle: a fresh order of the examples each epoch
        (`fnn.train.data.shuffle.shuffled_indices`); ``False`` keeps the
        data's own order (for data whose order matters).
      strategy, steps_per_dispatch: how steps are dispatched (expert override,
        see `fnn.train.epoch.dispatch`).
      mesh: data parallel training over a ``jax.sharding.Mesh`` with a ``"data"``
        axis (e.g. ``jax.make_mesh((n,), ("data",))``): each batch is split over
        the axis's devices, parameters and data are replicated, and the numbers
        are those of one device (BatchNorm's statistics are the whole batch's);
        see `fnn.train.epoch.data_parallel`.
      param_sharding: with ``mesh``, split parameters over the mesh's axes too:
        ``{path pattern: PartitionSpec}`` (e.g. ``{"*/w": PartitionSpec(None, "model")}``
        on a ``("data", "model")`` mesh) or ``fn(path) -> PartitionSpec | None``; the
        optimizer state of a parameter follows it, the rest stays replicated
        (`fnn.train.epoch.data_parallel.param_specs`).
      checkpoint_dir: a directory (or a `fnn.checkpoint.Manager`) to write a
        checkpoint to after every ``checkpoint_every``-th epoch, the last one, and
        one where training stops (the newest 3 are kept); see `fnn.train.loop.resume`.
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
      monitor: a `fnn.train.Monitor`: per-layer gradient and parameter norms,
        update ratios, activation statistics, dead and saturated units, measured inside
        the compiled step and added to the history (``"grad_norm/<layer>"``, ...; see
        `fnn.train.step.monitor`); read them with `fnn.train.diagnose` and
        `fnn.train.plot_monitor`. ``None``: nothing measured, no cost.

    Returns:
      A `FitResult` ``(params, state, opt_state, history)``.

    Raises:
      ValueError: bad arguments or shapes, before anything is compiled.
      FloatingPointError: the loss became NaN/inf (names the epoch and step),
        unless the optimizer skips such steps.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(16), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1); y = x ** 2
      >>> result = fnn.fit(model, "mse", fnn.optim.adam(0.03), (x, y), epochs=50,
      ...                  batch_size=16, key=jax.random.key(0), progress=False)
      >>> len(result.history["loss"]), result.history["loss"][-1] < 0.02
      (50, True)
    """
    # 1. collect and check the options; open the inputs (what kind of data, which part
    #    validates), each checked before anything about the model
    model = as_layer(model)
    checks.check_argument_order("fit", loss, optimizer, data)
    inputs = open_inputs("fit", data, Batching(epochs, batch_size, shuffle, drop_remainder,
                                               steps_per_epoch, stream, prefetch),
                         Validation(validation_data, validation_split, validation_batch_size),
                         sample_weight, class_weight, mesh)
    batching = inputs.batching
    verbose = resolve_verbose("fit", verbose, progress)
    checks.check_key("fit", key)
    # 2. build the step: loss, metrics, precision, the (loss-scaled) optimizer
    step = build_step("fit", model, loss, optimizer,
                      StepOptions(metrics, loss_weights, augment, precision, loss_scale,
                                  accumulation_steps, penalty, monitor),
                      batching.batch_size or inputs.n, opt_state)
    check_monitor("fit", early_stopping, step.cfg, inputs.validation is not None)
    host = HostOptions(early_stopping, check_callbacks("fit", callbacks), verbose,
                       resume_.manager_for("fit", checkpoint_dir, checkpoint_every),
                       checkpoint_every, resume)
    devices = check_devices("fit", step.cfg.model, mesh, param_sharding, batching.batch_size,
                            inputs.n, batching.drop_remainder, strategy, steps_per_dispatch)
    # 3. starting values: every check on shapes first, then init, given or resumed values
    run = None if host.manager is None else resume_.identity(
        key, inputs.n, batching.batch_size, bool(batching.drop_remainder),
        bool(batching.shuffle))
    start = starting_values("fit", step, inputs, key, params, state, class_weight,
                            host.manager, run, resume)
    # 4. placement on the devices (or a streamed source); 5. the epoch runner
    placed = place("fit", inputs, start.y, start.check_values, start.weighted, start.params,
                   start.state, start.opt_state, devices.mesh, param_sharding)
    runner = epoch_runner(start.cfg, step.cfg, inputs, placed, devices)
    # 6. run the epochs: history, callbacks, early stopping, checkpoints, progress
    names = start.cfg.logged_names() + monitor_.history_names(
        start.cfg, start.params, start.state, checks.struct(inputs.x))
    return FitResult(*run_epochs(runner, placed, start, host, names, key,
                                 batching.epochs, batching.batch_size, devices.mesh, run))

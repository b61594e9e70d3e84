"""fit_ensemble: each member equals fit with its key (dropout, validation, a partial last batch,
per-member early stopping), chunks change nothing, one compilation, bad keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built

RNG = np.random.default_rng(0)
X = RNG.normal(size=(50, 4)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
XV, YV = X[:20] + 0.1, Y[:20]
MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dropout(0.2), fnn.Dense(2)])
LOSS = "sparse_softmax_cross_entropy"
KEYS = jax.random.split(jax.random.key(3), 3)
OPTIONS = dict(epochs=4, batch_size=16, metrics=["accuracy"], validation_data=(XV, YV),
               progress=False)


def member(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def assert_same(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6), a, b)


def test_each_member_equals_fit_with_its_key():
    opt = fnn.optim.adam(0.05)
    result = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, **OPTIONS)
    assert result.params["0"]["w"].shape == (3, 4, 8) and len(result.history) == 3
    for i in range(3):
        alone = fnn.fit(MODEL, LOSS, opt, (X, Y), key=KEYS[i], **OPTIONS)
        assert_same(member(result.params, i), alone.params)
        assert_same(member(result.opt_state, i), alone.opt_state)
        assert result.history[i].keys() == alone.history.keys()
        for name in alone.history:
            np.testing.assert_allclose(result.history[i][name], alone.history[name], rtol=1e-5)
    first = member(result.params, 0)
    assert not np.allclose(first["0"]["w"], member(result.params, 1)["0"]["w"])


def test_early_stopping_acts_per_member_and_chunks_change_nothing():
    opt = fnn.optim.sgd(0.5)
    rule = fnn.EarlyStopping(monitor="val_loss", patience=0)
    options = {**OPTIONS, "epochs": 12}
    result = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, early_stopping=rule,
                              **options)
    lengths = [len(h["loss"]) for h in result.history]
    for i in range(3):
        alone = fnn.fit(MODEL, LOSS, opt, (X, Y), key=KEYS[i], early_stopping=rule, **options)
        assert lengths[i] == len(alone.history["loss"])
        assert_same(member(result.params, i), alone.params)      # the best epoch's weights
    chunked = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, early_stopping=rule,
                               chunk_size=2, **options)
    assert_same(chunked.params, result.params)
    assert [len(h["loss"]) for h in chunked.history] == lengths


def test_one_compilation_for_the_ensemble():
    opt = fnn.optim.adam(0.01)
    keys = jax.random.split(jax.random.key(9), 5)
    fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=keys, epochs=1, batch_size=10,
                     progress=False)
    with programs_built() as built:
        fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=jax.random.split(jax.random.key(1), 5),
                         epochs=3, batch_size=10, progress=False)
    assert built == []


@pytest.mark.parametrize("keys, match", [
    (jax.random.key(0), r"shape \(members,\)"),
    (np.zeros((3, 2), np.int32), "PRNG keys of shape"),
    ("seed", "array of PRNG keys"),
])
def test_bad_keys_are_clear_errors(keys, match):
    with pytest.raises(ValueError, match=match):
        fnn.fit_ensemble(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), keys=keys, epochs=1,
                         batch_size=10, progress=False)


def test_bad_chunk_size_and_raw_uint32_keys():
    with pytest.raises(ValueError, match="chunk_size"):
        fnn.fit_ensemble(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), keys=KEYS, epochs=1,
                         batch_size=10, chunk_size=0, progress=False)
    raw = jnp.stack([jax.random.key_data(k) for k in KEYS])
    a = fnn.fit_ensemble(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), keys=raw, epochs=1,
                         batch_size=10, progress=False)
    b = fnn.fit_ensemble(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), keys=KEYS, epochs=1,
                         batch_size=10, progress=False)
    assert_same(a.params, b.params)


def test_members_are_chunked_automatically_when_memory_is_short(monkeypatch):
    from fnn.train import ensemble
    from fnn.train.many import memory
    opt = fnn.optim.adam(0.05)
    options = {**OPTIONS, "epochs": 2}
    together = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, **options)
    per_member = ensemble.member_bytes(MODEL, opt, X, 16)
    monkeypatch.setattr(memory, "available_memory", lambda: 4 * per_member)   # 2 at a time
    assert ensemble.auto_chunk_size(MODEL, opt, X, 16, 3) == 2
    chunks = []
    original = ensemble.train_members
    monkeypatch.setattr(ensemble, "train_members",
                        lambda keys, *a, **k: chunks.append(keys.shape[0]) or original(keys, *a,
                                                                                      **k))
    apart = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, **options)
    assert chunks == [2, 1]
    assert_same(apart.params, together.params)


def test_skipped_steps_are_counted_per_epoch_as_in_fit():
    y = X[:, :1] * 1e20                                   # overflows: every step is skipped
    opt = fnn.optim.skip_nonfinite(fnn.optim.sgd(1e10))
    model = fnn.Dense(1)
    result = fnn.fit_ensemble(model, "mse", opt, (X, y), keys=KEYS[:2], epochs=2,
                              batch_size=16, progress=False)
    alone = fnn.fit(model, "mse", opt, (X, y), key=KEYS[0], epochs=2, batch_size=16,
                    progress=False)
    assert result.history[0]["skipped"] == alone.history["skipped"]
    assert all(type(v) is float for v in result.history[0]["skipped"])


@pytest.mark.parametrize("cores", [1, 2])
def test_groups_of_members_on_several_cores_change_nothing(monkeypatch, cores):
    """On a CPU the members train in one group per core (3 members on 2 cores: groups of 2,
    the last member repeated and its copy dropped); any grouping gives the same members."""
    from fnn.train.many import members
    opt = fnn.optim.sgd(0.5)
    rule = fnn.EarlyStopping(monitor="val_loss", patience=0)
    options = {**OPTIONS, "epochs": 6, "early_stopping": rule}
    monkeypatch.setattr(members, "parallel_groups", lambda members: 3)
    reference = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, **options)
    monkeypatch.setattr(members, "parallel_groups", lambda members: min(cores, members))
    grouped = fnn.fit_ensemble(MODEL, LOSS, opt, (X, Y), keys=KEYS, **options)
    assert_same(grouped.params, reference.params)
    assert_same(grouped.opt_state, reference.opt_state)
    assert grouped.params["0"]["w"].shape[0] == 3
    for mine, theirs in zip(grouped.history, reference.history):
        assert mine.keys() == theirs.keys()
        for name in mine:     # the same epochs (early stopping), the same numbers
            np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-5)

"""Test-wide settings: strict shapes (no silent rank promotion), and names for doctests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import fnn

    doctest_namespace.update(jax=jax, jnp=jnp, np=np, fnn=fnn)

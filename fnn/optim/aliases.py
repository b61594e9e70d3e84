"""The named optimizers, each a chain of primitives.

Notation of the lecture notes: ``theta`` the parameters, ``g = g_t`` the
gradient at update ``t = 1, 2, ...``, ``eta`` the learning rate (a float, an
array, or a schedule ``step -> lr`` evaluated at ``t - 1``). All state starts
at zero. Every hyperparameter is a float32 array in the state (see
`fnn.optim.set_hyperparams`); every ``update`` is shared by all
optimizers of the same kind, e.g. ``adam(1e-3).update is adam(3e-4).update``.
Each factory raises ``ValueError`` naming the argument for a negative or
non-finite learning rate, eps or weight decay, or a beta/rho outside [0, 1).
"""

from __future__ import annotations

from typing import Any, Callable

from fnn.optim.base import GradientTransformation, named_chain
from fnn.optim.transforms.adam import scale_by_adam
from fnn.optim.transforms.adaptive import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from fnn.optim.transforms.decay import add_weight_decay
from fnn.optim.transforms.learning_rate import scale_by_learning_rate
from fnn.optim.transforms.lion import scale_by_lion
from fnn.optim.transforms.momentum import scale_by_momentum
from fnn.optim.validation import check_hyperparameter, check_hyperparameters

LearningRate = float | Any | Callable


def _check(where: str, learning_rate: LearningRate, **others: Any) -> None:
    if not callable(learning_rate):
        check_hyperparameter(where, "learning_rate", learning_rate)
    check_hyperparameters(where, **others)


def sgd(learning_rate: LearningRate = 0.01) -> GradientTransformation:
    """Gradient descent: ``theta <- theta - eta g``.

    Batch, stochastic or mini-batch depends only on the batch the gradient comes from.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.

    Returns:
      ``chain(scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.sgd(0.25)
      >>> u, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
      >>> u.tolist()
      [-0.500]
    """
    _check("sgd", learning_rate)
    return named_chain("sgd", scale_by_learning_rate(learning_rate))


def momentum(learning_rate: LearningRate = 0.01, beta: float = 0.9, nesterov: bool = False,
             bias_correction: bool = False) -> GradientTransformation:
    """Gradient descent with momentum, the notes' exponentially weighted average.

    ``theta <- theta - eta d_t``, where ``d_t`` is the output of
    `fnn.optim.scale_by_momentum` (the EWA ``v_t`` of the gradients, its
    bias-corrected or its Nesterov form; the equations are stated there). The
    EWA form's steps are ``(1 - beta)`` times those of PyTorch/Keras SGD
    momentum at the same ``eta``.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      beta: the EWA decay, in [0, 1).
      nesterov: use the look-ahead direction.
      bias_correction: divide by ``1 - beta^t``.

    Returns:
      ``chain(scale_by_momentum(beta, nesterov=..., bias_correction=...), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.momentum(0.1, beta=0.9)
      >>> u, _ = opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))
      >>> round(float(u[0]), 6)  # -0.1 * (0.1 * 1)
      -0.010000
    """
    _check("momentum", learning_rate, beta=beta)
    return named_chain("momentum",
                       scale_by_momentum(beta, nesterov=nesterov, bias_correction=bias_correction),
                       scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: LearningRate = 1e-3, beta: float = 0.9, eps: float = 1e-8, *,
            eps_in_sqrt: bool = False) -> GradientTransformation:
    """RMSProp (Hinton, Coursera lecture 6e, 2012).

    ``s_t = beta s_{t-1} + (1 - beta) g^2`` with ``s_0 = 0``;
    ``theta <- theta - eta g / (sqrt(s_t) + eps)`` by default, or
    ``theta <- theta - eta g / sqrt(s_t + eps)`` with ``eps_in_sqrt=True``
    (the notes' ``eta' = eta / sqrt(s_dw + eps)``, and optax's default).

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      beta: decay of the squared-gradient average, in [0, 1).
      eps: >= 0, added outside the root (inside with ``eps_in_sqrt``).
      eps_in_sqrt: put ``eps`` under the root (static: part of the compiled program).

    Returns:
      ``chain(scale_by_rms(beta, eps, eps_in_sqrt=...), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.rmsprop(0.25, beta=0.75, eps=0.0)
      >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].tolist()  # -0.25 * 2 / sqrt(0.25 * 4)
      [-0.500]
      >>> opt = fnn.optim.rmsprop(0.25, beta=0.75, eps=3.0, eps_in_sqrt=True)
      >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].tolist()  # -0.25 * 2 / sqrt(1 + 3)
      [-0.250]
    """
    _check("rmsprop", learning_rate, beta=beta, eps=eps)
    return named_chain("rmsprop", scale_by_rms(beta, eps, eps_in_sqrt=eps_in_sqrt),
                       scale_by_learning_rate(learning_rate))


def adagrad(learning_rate: LearningRate = 1e-2, eps: float = 1e-8) -> GradientTransformation:
    """Adagrad (Duchi et al. 2011).

    ``a_t = a_{t-1} + g^2``; ``theta <- theta - eta g / (sqrt(a_t) + eps)``.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      eps: >= 0, added outside the root.

    Returns:
      ``chain(scale_by_adagrad(eps), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.adagrad(0.5)
      >>> opt.update(jnp.array([4.0]), opt.init(jnp.zeros(1)))[0].round(4).tolist()  # -0.5 * 4 / sqrt(16)
      [-0.5000]
    """
    _check("adagrad", learning_rate, eps=eps)
    return named_chain("adagrad", scale_by_adagrad(eps), scale_by_learning_rate(learning_rate))


def adadelta(learning_rate: LearningRate = 1.0, rho: float = 0.95,
             eps: float = 1e-6) -> GradientTransformation:
    """AdaDelta (Zeiler 2012, Algorithm 1), with an optional learning rate as in PyTorch.

    ``E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g^2``;
    ``dx_t = -sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) g``;
    ``E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) dx_t^2``; ``theta <- theta + eta dx_t``.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      rho: decay of both averages, in [0, 1).
      eps: >= 0, inside both roots.

    Returns:
      ``chain(scale_by_adadelta(rho, eps), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.adadelta(rho=0.0, eps=1e-6)
      >>> round(float(opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))[0][0]), 6)
      -0.001000
    """
    _check("adadelta", learning_rate, rho=rho, eps=eps)
    return named_chain("adadelta", scale_by_adadelta(rho, eps), scale_by_learning_rate(learning_rate))


def adam(learning_rate: LearningRate = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> GradientTransformation:
    """Adam (Kingma & Ba 2015): momentum and RMSProp with bias correction.

    ``m_t = b1 m_{t-1} + (1 - b1) g``; ``v_t = b2 v_{t-1} + (1 - b2) g^2``;
    ``m_hat = m_t / (1 - b1^t)``; ``v_hat = v_t / (1 - b2^t)``;
    ``theta <- theta - eta m_hat / (sqrt(v_hat) + eps)``.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      b1: first-moment decay, in [0, 1).
      b2: second-moment decay, in [0, 1).
      eps: >= 0, added to ``sqrt(v_hat)``.

    Returns:
      ``chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.adam(learning_rate=1e-3)
      >>> params = {"w": jnp.ones(2)}
      >>> updates, state = opt.update({"w": jnp.array([3.0, -0.1])}, opt.init(params), params)
      >>> updates["w"].round(6).tolist()  # the first step is -eta sign(g)
      [-0.001000, 0.001000]
    """
    _check("adam", learning_rate, b1=b1, b2=b2, eps=eps)
    return named_chain("adam", scale_by_adam(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamw(learning_rate: LearningRate = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 1e-2) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    ``m_hat, v_hat`` as in `adam`;
    ``theta <- theta - eta (m_hat / (sqrt(v_hat) + eps) + wd theta)``. The decay
    is scaled by ``eta`` (and so follows a schedule), as in PyTorch and optax.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      b1, b2, eps: as in `adam`.
      weight_decay: ``wd >= 0``.

    Returns:
      ``chain(scale_by_adam(b1, b2, eps), add_weight_decay(wd), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.adamw(0.25, weight_decay=0.5)
      >>> params = jnp.array([2.0])
      >>> opt.update(jnp.array([0.0]), opt.init(params), params)[0].tolist()  # -0.25 * 0.5 * 2
      [-0.250]
    """
    _check("adamw", learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
    return named_chain("adamw", scale_by_adam(b1, b2, eps), add_weight_decay(weight_decay),
                       scale_by_learning_rate(learning_rate))


def nadam(learning_rate: LearningRate = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8) -> GradientTransformation:
    """Nadam: Adam with Nesterov momentum (Dozat 2016, "Incorporating Nesterov Momentum into Adam").

    The form optax and Keras use (no momentum schedule):
    ``m_t, v_t`` as in `adam`;
    ``m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)``; ``v_hat = v_t / (1 - b2^t)``;
    ``theta <- theta - eta m_hat / (sqrt(v_hat) + eps)``.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      b1, b2, eps: as in `adam`.

    Returns:
      ``chain(scale_by_adam(b1, b2, eps, nesterov=True), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.nadam(0.1, b1=0.5, b2=0.5, eps=0.0)
      >>> # m_hat = 0.5*0.5/0.75 + 0.5/0.5 = 4/3, v_hat = 1: the step is -0.1 * 4/3
      >>> opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))[0].round(5).tolist()
      [-0.13333]
    """
    _check("nadam", learning_rate, b1=b1, b2=b2, eps=eps)
    return named_chain("nadam", scale_by_adam(b1, b2, eps, nesterov=True),
                       scale_by_learning_rate(learning_rate))


def lion(learning_rate: LearningRate = 1e-4, b1: float = 0.9, b2: float = 0.99,
         weight_decay: float = 0.0) -> GradientTransformation:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2).

    ``c_t = b1 m_{t-1} + (1 - b1) g``; ``theta <- theta - eta (sign(c_t) + wd theta)``;
    ``m_t = b2 m_{t-1} + (1 - b2) g``.

    Args:
      learning_rate: ``eta``, a float >= 0, a scalar array, or a schedule ``step -> lr``.
      b1: interpolation weight of the update direction, in [0, 1).
      b2: decay of the momentum, in [0, 1).
      weight_decay: ``wd >= 0`` (decoupled, as in AdamW).

    Returns:
      ``chain(scale_by_lion(b1, b2), add_weight_decay(wd), scale_by_learning_rate(eta))``.

    Examples:
      >>> opt = fnn.optim.lion(0.01)
      >>> params = jnp.zeros(2)
      >>> opt.update(jnp.array([5.0, -0.001]), opt.init(params), params)[0].round(6).tolist()
      [-0.010000, 0.010000]
    """
    _check("lion", learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)
    return named_chain("lion", scale_by_lion(b1, b2), add_weight_decay(weight_decay),
                       scale_by_learning_rate(learning_rate))

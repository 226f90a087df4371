"""The blend weights of :class:`~moa_sklearn.ensemble.StackingBlend`.

Weights on the simplex (non-negative, sum 1) chosen with SLSQP to minimise the
mean binary log loss of the blended out-of-fold predictions, globally or per
target with shrinkage towards the global weights; or fixed weights.
"""

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from ..metrics import PROBA_EPS


def _blend(P, W):
    """Blend (M, n, k) predictions with (k, M) weights into (n, k)."""
    return np.einsum("mnk,km->nk", P, W)


def _log_loss_and_grad(w, P, y, eps):
    """Mean binary log loss of ``w @ P`` (P: (M, N), y: (N,)) and its gradient."""
    p = np.clip(w @ P, eps, 1 - eps)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))
    dp = -(y / p - (1 - y) / (1 - p)) / y.size
    return loss, P @ dp


def _simplex_weights(P, y, eps=PROBA_EPS):
    """Weights on the simplex that minimise the log loss of ``w @ P``.

    SLSQP with ``w >= 0`` and ``sum(w) == 1``, started at uniform weights; the
    objective is scaled by its value there so that the tolerance is relative.
    The result is compared with the uniform weights and with each single
    estimator (the vertices), and the best of them is returned, so the blend
    is never worse out of fold than the best base estimator.
    """
    M = P.shape[0]
    if M == 1:
        return np.ones(1)
    w0 = np.full(M, 1.0 / M)
    scale = max(_log_loss_and_grad(w0, P, y, eps)[0], 1e-12)

    def fun(w):
        loss, grad = _log_loss_and_grad(w, P, y, eps)
        return loss / scale, grad / scale

    result = minimize(
        fun,
        w0,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * M,
        constraints=[
            {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(M)}
        ],
        options={"ftol": 1e-10, "maxiter": 200},
    )
    candidates = [w0, *np.eye(M)]
    w = np.clip(result.x, 0.0, None)
    if np.isfinite(w).all() and w.sum() > 0:
        candidates.insert(0, w / w.sum())
    # never worse than the uniform start or than any single base estimator
    losses = [fun(c)[0] for c in candidates]
    return candidates[int(np.argmin(losses))]


def _global_weights(weights, oof, Y, n_estimators):
    """The global weights: optimal on ``oof``, uniform, or the fixed ones."""
    if isinstance(weights, str) and weights in ("optimize", "per_target"):
        return _simplex_weights(oof.reshape(n_estimators, -1), Y.ravel())
    if isinstance(weights, str):  # "uniform"
        return np.full(n_estimators, 1.0 / n_estimators)
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def blend_weights(weights, oof, Y, *, n_estimators, shrinkage):
    """The weights of a blend: ``(w, W)``.

    Parameters
    ----------
    weights : {'optimize', 'per_target', 'uniform'} or array-like
        As the parameter of :class:`~moa_sklearn.ensemble.StackingBlend`.
    oof : ndarray of shape (n_estimators, n_samples, n_outputs) or None
        The out-of-fold predictions (None with fixed weights, without an
        inner CV).
    Y : ndarray of shape (n_samples, n_outputs)
        The 0/1 targets.
    n_estimators : int
    shrinkage : float
        With ``'per_target'``: the weight of the global weights in each
        target's.

    Returns
    -------
    w : ndarray of shape (n_estimators,)
        The global weights.
    W : ndarray of shape (n_outputs, n_estimators)
        The weights of each output column (``w`` on every row unless
        ``weights='per_target'``).
    """
    w = _global_weights(weights, oof, Y, n_estimators)
    W = np.tile(w, (Y.shape[1], 1))
    if isinstance(weights, str) and weights == "per_target" and n_estimators > 1:
        for j in range(Y.shape[1]):
            W[j] = shrinkage * w + (1 - shrinkage) * _simplex_weights(
                oof[:, :, j], Y[:, j]
            )
    return w, W


# probabilities are clipped to [1e-5, 1 - 1e-5] before the logit of the
# per-target stage: a hard 0 or 1 (e.g. of a k-NN) would otherwise be a logit
# of +-34 that dwarfs the informative ones
LOGIT_EPS = 1e-5


def _logit(P, eps=LOGIT_EPS):
    P = np.clip(np.asarray(P, dtype=np.float64), eps, 1 - eps)
    return np.log(P) - np.log1p(-P)


class PerTargetLogit:
    """The learned second stage ``final_estimator="per_target"``.

    For each output ``j``, a logistic regression on the logits of the base
    classifiers' probabilities of output ``j`` (one coefficient per base
    classifier and an intercept), fitted on out-of-fold predictions. All
    outputs are fitted at once (one L-BFGS over every coefficient). An L2
    penalty pulls the coefficients towards ``1 / M`` (the mean of the
    logits) and the intercepts towards 0, so that an output with few
    positives stays near the plain logit average instead of drifting to 0:
    the objective is ``C * sum(log loss) + 0.5 * (|b - 1/M|^2 + a^2)``, as
    scikit-learn's ``LogisticRegression`` scales ``C``.
    """

    def __init__(self, C=1.0, max_iter=500):
        self.C = C
        self.max_iter = max_iter

    @staticmethod
    def _by_output(P):
        """(M, n, k) probabilities -> (k, n, M) logits, contiguous per output."""
        return np.ascontiguousarray(_logit(P).transpose(2, 1, 0))

    def fit(self, P, Y):
        """``P``: (M, n, k) probabilities; ``Y``: (n, k) 0/1 targets."""
        L = self._by_output(P)  # batched products: one (n, M) matrix per output
        k, n, M = L.shape
        Yt = np.asarray(Y, dtype=np.float64).T
        center = np.full((k, M), 1.0 / M)

        def fun(theta):
            a, b = theta[:k], theta[k:].reshape(k, M)
            z = a[:, None] + np.matmul(L, b[:, :, None])[:, :, 0]
            # log loss of sigmoid(z), stable: log(1 + e^z) - y z
            loss = np.logaddexp(0.0, z) - Yt * z
            dz = self.C * (expit(z) - Yt)
            db = np.matmul(dz[:, None, :], L)[:, 0, :] + (b - center)
            value = self.C * loss.sum() + 0.5 * (((b - center) ** 2).sum() + a @ a)
            grad = np.concatenate([dz.sum(axis=1) + a, db.ravel()])
            return value / n, grad / n

        theta0 = np.concatenate([np.zeros(k), center.ravel()])
        result = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": 1e-8},
        )
        self.intercept_ = result.x[:k]
        self.coef_ = result.x[k:].reshape(k, M)
        self.n_iter_ = int(result.nit)
        return self

    def predict_proba(self, P):
        """(M, n, k) probabilities of the base classifiers -> (n, k)."""
        L = self._by_output(P)
        z = self.intercept_[:, None] + np.matmul(L, self.coef_[:, :, None])[:, :, 0]
        return expit(z).T

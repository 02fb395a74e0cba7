"""The weak test's companions: linear models scored beside the forest, shuffled fast.

Two companions, both standardised linear models (ridge regression, or logistic
regression for classes):

- ``"linear"``: on the features. It sees a faint linear effect that a forest
  on few rows sees poorly.
- ``"pairwise"``: on the features and every pairwise product of them. It also
  sees a pure interaction (``x_a * x_b``, no main effect), which a forest on
  1,000 rows misses when stronger effects take its splits.

A fitted model of that form is a quadratic function of the standardised row
``z``: ``f(z) = b + w.z + 1/2 z'Cz`` (``C`` symmetric with a zero diagonal; zero
for ``"linear"``). Shuffling the columns ``S`` moves ``z`` by ``d`` on ``S``, and
the prediction by ``sum_j d_j G_j(z) + sum_{j<k in S} C_jk d_j d_k`` with
``G(z) = w + Cz``, so the shuffled copies of the held-out rows need not be
built: each copy's predictions are the rows' own plus that change. On wide data
(300 rows x 2,000 columns) building the copies cost more than every forest
together. No Keras here.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

__all__ = ["LinearCompanion", "linear_proxy", "MAX_PAIRWISE_FEATURES"]

#: ``"pairwise"`` models every pair of at most this many features (1,225 products); wider tables get
#: the features alone (the ``"linear"`` companion).
MAX_PAIRWISE_FEATURES = 50


def linear_proxy(task: str, pairwise: bool = False):
    """A companion, unfitted: standardised ridge regression, or logistic regression for classes.

    With ``pairwise`` the standardised features' pairwise products (standardised again) join them.
    """
    model = Ridge(alpha=1.0) if task == "regression" else LogisticRegression(C=1.0, max_iter=1000)
    steps = [SimpleImputer(keep_empty_features=True), StandardScaler()]
    if pairwise:
        steps += [PolynomialFeatures(degree=2, interaction_only=True, include_bias=False), StandardScaler()]
    return make_pipeline(*steps, model)


class LinearCompanion:
    """A fitted :func:`linear_proxy` pipeline that predicts edited copies of rows without building them.

    ``predict`` and ``predict_proba`` are the pipeline's; :meth:`edited_predictor`
    gives what :func:`archguide.scoring._permutation.permutation_drops` calls instead of
    stacking copies.
    """

    def __init__(self, pipeline):
        self.pipeline = pipeline
        imputer, scaler, *products, model = (step for _, step in pipeline.steps)
        self._fill = imputer.statistics_
        self._center, self._scale = scaler.mean_, scaler.scale_
        coef = np.atleast_2d(model.coef_)  # (outputs, terms)
        self._intercept = np.atleast_1d(model.intercept_).astype(float)
        p = len(self._center)
        self._pairs = None  # (outputs, p, p): the products' coefficients on the standardised features
        if products:
            poly, rescale = products
            coef = coef / rescale.scale_
            self._intercept = self._intercept - coef @ rescale.mean_
            self._pairs = np.zeros((coef.shape[0], p, p))
            for k, powers in enumerate(poly.powers_[p:], start=p):
                i, j = np.flatnonzero(powers)
                self._pairs[:, i, j] = self._pairs[:, j, i] = coef[:, k]
            coef = coef[:, :p]
        self._coef = coef  # (outputs, features)
        self.classes_ = getattr(model, "classes_", None)
        self.predict = pipeline.predict
        if self.classes_ is not None:
            self.predict_proba = pipeline.predict_proba

    def _standardised(self, values: np.ndarray, cols) -> np.ndarray:
        values = np.where(np.isnan(values), self._fill[cols], values)
        return (values - self._center[cols]) / self._scale[cols]

    def edited_predictor(self, X: np.ndarray, response: str):
        """A function of edits that predicts every edited copy of ``X``, stacked as ``stacked_copies`` would stack them.

        Edit ``(cols, values)`` sets ``copy[:, cols] = values``. The rows' own
        standardised values and predictions are computed here, once, however
        many chunks of edits follow. Returns None when the shortcut does not
        apply (class labels asked of a classifier).
        """
        if self.classes_ is not None and response != "proba":
            return None
        Z = self._standardised(np.asarray(X, dtype=float), np.arange(X.shape[1]))
        base = Z @ self._coef.T + self._intercept  # (n, outputs): the rows' own predictions
        slope = np.broadcast_to(self._coef, (len(Z),) + self._coef.shape)  # (n, outputs, p): G(z) = w + Cz
        if self._pairs is not None:
            base = base + 0.5 * np.einsum("ni,oij,nj->no", Z, self._pairs, Z)
            slope = slope + np.einsum("oij,nj->noi", self._pairs, Z)

        def predict_edits(edits) -> np.ndarray:
            out = np.empty((len(edits),) + base.shape)
            # Edits of one column (most of them) in one step: the loop's per-edit overhead cost more than its sums.
            single = [i for i, (cols, _) in enumerate(edits) if len(cols) == 1]
            if single:
                cols = np.array([edits[i][0][0] for i in single])
                values = np.concatenate([np.asarray(edits[i][1], dtype=float).reshape(-1, 1) for i in single], axis=1)
                shifted = (self._standardised(values, cols) - Z[:, cols]).T  # (edits, n)
                out[single] = base + shifted[:, :, None] * np.moveaxis(slope[:, :, cols], 2, 0)
            for i, (cols, values) in enumerate(edits):
                if len(cols) != 1:
                    shifted = self._standardised(np.asarray(values, dtype=float), cols) - Z[:, cols]  # (n, |S|)
                    out[i] = base + np.einsum("nc,noc->no", shifted, slope[:, :, cols])
                    if self._pairs is not None:
                        block = np.triu(self._pairs[:, cols][:, :, cols], k=1)  # (outputs, |S|, |S|)
                        out[i] += np.einsum("nc,ocd,nd->no", shifted, block, shifted)
            out = out.reshape((-1, base.shape[1]))
            if self.classes_ is None:
                return out[:, 0]
            if out.shape[1] == 1:  # binary: one logit
                p = expit(out[:, 0])
                return np.column_stack([1.0 - p, p])
            return softmax(out, axis=1)

        return predict_edits

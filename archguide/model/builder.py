"""Build a multi-branch Keras model from an :class:`~archguide.planning.ArchitecturePlan`.

The model::

    input (n_samples, len(plan.features))
      -> FeatureGate                      per-feature gate and L1 penalty ("gate")
      [-> EnsembleAdapter                 with ensemble_size=k: k scaled copies ("ensemble_adapter"); every
                                          layer below acts on each copy, shared by the k members]
      -> one branch per plan branch       ColumnSelector + Dense stack ("branch_<name>_dense_<i>"); a
                                          branch with embedded features adds their periodic encoding
                                          ("branch_<name>_periodic") through a Dense ("branch_<name>_embed")
                                          to its first layer's input, before the activation; a branch
                                          with category blocks reads each block's levels through a
                                          CategoryEmbedding ("branch_<name>_category_<k>") instead of a
                                          kernel row each ("branch_<name>_inputs": the other features,
                                          then the embeddings)
      -> concatenate                      ("merge")
      -> shared head                      Dense stack ("head_dense_<i>")
      -> output                           linear / sigmoid / softmax ("output"); with ensemble_size=k, one
                                          linear layer per member ("output", an EnsembleHead), their mean
                                          ("ensemble_mean") and the activation ("output_activation")

The shared head is not optional: branches that fed a linear output directly
would make the model additive across branches, unable to learn an interaction
between features that landed in different branches.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_number, check_units
from archguide.exceptions import ConfigError
from archguide.model.layers import (
    CategoryEmbedding,
    ColumnSelector,
    DataLoss,
    EnsembleAdapter,
    EnsembleHead,
    EnsembleMean,
    FeatureGate,
    PeriodicEncoding,
    SmoothedCrossentropy,
)
from archguide.planning import ArchitecturePlan

keras = import_keras()

__all__ = ["build_model", "MODEL_TASKS", "DATA_LOSS_METRIC"]

MODEL_TASKS = ("regression", "binary", "multiclass")
#: Name of the metric that repeats the task's loss without the penalties. Early
#: stopping and model selection should watch ``"val_" + DATA_LOSS_METRIC``: the
#: penalties move when a callback changes the strengths, so ``val_loss`` moves too.
DATA_LOSS_METRIC = "data_loss"


_TASK_LOSS = {
    "regression": "mean_squared_error",
    "binary": "binary_crossentropy",
    "multiclass": "sparse_categorical_crossentropy",
}


#: Variables AdamW leaves alone: the gates (L1-penalised already), biases, ensemble scales, frequencies.
_NOT_DECAYED = ("gate", "bias", "scales", "coefficients")


def _compile_arguments(task: str, label_smoothing: float = 0.0) -> dict:
    """Loss and metrics: the (unsmoothed) loss again without penalties (weighted as the loss is), MAE or accuracy."""
    other = {
        "regression": keras.metrics.MeanAbsoluteError(name="mae"),
        "binary": keras.metrics.BinaryAccuracy(name="accuracy"),
        "multiclass": keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    }[task]
    return {
        "loss": (
            SmoothedCrossentropy(label_smoothing, binary=task == "binary") if label_smoothing > 0 else _TASK_LOSS[task]
        ),
        "metrics": [other],
        "weighted_metrics": [DataLoss(_TASK_LOSS[task], name=DATA_LOSS_METRIC)],
    }


def _with_category_embeddings(x, branch, prefix: str, next_seed):
    """The branch's features with each category block replaced by its embedding (see ``Branch.first_layer_rows``)."""
    position = {f: j for j, f in enumerate(branch.features)}
    in_blocks = {f for block, _ in branch.categories for f in block}
    rest = [j for j, f in enumerate(branch.features) if f not in in_blocks]
    parts = [ColumnSelector(rest, name=f"{prefix}_plain_select")(x)] if rest else []
    for k, (block, width) in enumerate(branch.categories):
        levels = ColumnSelector([position[f] for f in block], name=f"{prefix}_category_select_{k}")(x)
        parts.append(CategoryEmbedding(width, seed=next_seed(), name=f"{prefix}_category_{k}")(levels))
    return keras.layers.Concatenate(name=f"{prefix}_inputs")(parts) if len(parts) > 1 else parts[0]


def build_model(
    plan: ArchitecturePlan,
    *,
    task: str = "regression",
    n_outputs: int = 1,
    head_units: Sequence[int] | int | None = None,
    dropout: float = 0.0,
    activation: str = "relu",
    ensemble_size: int = 1,
    compile: bool = True,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
    steps_per_execution: int = 1,
    seed: int | None = None,
    name: str = "archguide",
) -> keras.Model:
    """Build (and by default compile) the Keras model a plan describes.

    Args:
        plan: An :class:`~archguide.planning.ArchitecturePlan`.
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        n_outputs: Regression targets (linear units), or classes for
            ``"multiclass"`` (softmax units, at least 2); ``"binary"`` takes 1
            (one sigmoid unit).
        head_units: Widths of the shared layers after the merge; default
            ``plan.head_units``.
        dropout: Dropout rate after every hidden Dense layer (0 for none).
        activation: Activation of the hidden Dense layers.
        ensemble_size: Members of a TabM-mini ensemble (1: none). With
            ``k > 1`` the gated input is copied ``k`` times, each copy scaled
            feature by feature (:class:`~archguide.model.layers.EnsembleAdapter`),
            the branches and the head are shared by the copies, each member
            has its own output layer, and the model predicts their mean; each
            member is trained on its own loss (see
            :class:`~archguide.model.layers.EnsembleMean`). The model's input and
            output shapes do not change.
        compile: Compile with the task's loss, the optimizer, and metrics: the
            loss again as ``"data_loss"`` (without the gate's penalty, weighted
            as the loss is, so ``loss - penalty == data_loss`` with or without
            ``sample_weight``/``class_weight``; watch ``val_data_loss`` for
            early stopping) and MAE or accuracy. Targets may be 1-D (the
            usual ``(n_samples,)`` 0/1 or class-index vector) or a column.
        optimizer: An optimizer name or instance (a name gets ``learning_rate``).
        learning_rate: Learning rate when ``optimizer`` is a name.
        weight_decay: Decoupled weight decay of the kernels (AdamW; each step
            multiplies a kernel by ``1 - learning_rate * weight_decay``) when
            ``optimizer`` is ``"adam"``; the input gates, biases, ensemble
            scales and embedding frequencies are not decayed (the gates have
            their own L1 penalty). 0: Adam.
        label_smoothing: For classes, train against labels smoothed towards
            the uniform distribution by this much
            (:class:`~archguide.model.layers.SmoothedCrossentropy`); ``data_loss``
            stays the plain cross-entropy (the log loss, what early stopping
            reads), so it is no longer ``loss - penalty``. 0: none.
        steps_per_execution: Training steps per call of the compiled step
            function (Keras' ``compile`` argument): fewer trips through Python
            per step. With a repeated dataset and ``steps_per_epoch``, keep it
            a divisor of the steps per epoch, or epochs run over their end.
        seed: Seed for the kernel initializers and the dropout layers, each
            layer its own (None: Keras' global seed).
        name: The model's name.

    Returns:
        A ``keras.Model`` taking a float array ``(n_samples, len(plan.features))``
        in ``plan.features`` order.

    Raises:
        ConfigError: unknown ``task``, ``n_outputs`` inconsistent with it, or
            another option out of range.
        DataError: the plan is inconsistent (see ``ArchitecturePlan.validate``).
    """
    _check_build_options(task, n_outputs, dropout, learning_rate, weight_decay, label_smoothing, seed)
    check_int("ensemble_size", ensemble_size)
    check_int("steps_per_execution", steps_per_execution)
    if not isinstance(plan, ArchitecturePlan):
        raise ConfigError(f"build_model expects an ArchitecturePlan. Received: {type(plan).__name__}")
    plan.validate()
    head = check_units("head_units", plan.head_units if head_units is None else head_units)

    layers = _Layers(seed, dropout, activation)
    inputs = keras.Input(shape=(len(plan.features),), name="features")
    l1 = plan.options.get("l1")
    gated = FeatureGate(
        strengths=[plan.l1_strengths[f] for f in plan.features],
        feature_names=list(plan.features),
        l1=float(l1) if isinstance(l1, numbers.Real) and not isinstance(l1, bool) else None,
        name="gate",
    )(inputs)
    if ensemble_size > 1:
        gated = EnsembleAdapter(ensemble_size, seed=layers.next_seed(), name="ensemble_adapter")(gated)
    outputs_of_branches = [layers.branch(gated, plan, branch) for branch in plan.branches]
    if len(outputs_of_branches) > 1:
        x = keras.layers.Concatenate(name="merge")(outputs_of_branches)
    else:
        x = outputs_of_branches[0]
    for i, units in enumerate(head, start=1):
        x = layers.hidden(x, units, "head", i)
    model = keras.Model(inputs, layers.output(x, task, n_outputs, ensemble_size), name=name)
    if compile:
        _compile(model, task, optimizer, learning_rate, weight_decay, label_smoothing, steps_per_execution)
    return model


def _check_build_options(task, n_outputs, dropout, learning_rate, weight_decay, label_smoothing, seed) -> None:
    check_choice("task", task, MODEL_TASKS)
    check_int("n_outputs", n_outputs)
    if task == "binary" and n_outputs != 1:
        raise ConfigError(
            f"task='binary' has one sigmoid output; expected n_outputs=1. Received: n_outputs={n_outputs}"
        )
    if task == "multiclass" and n_outputs < 2:
        raise ConfigError(
            f"task='multiclass' needs n_outputs = the number of classes (at least 2). Received: n_outputs={n_outputs}"
        )
    check_number("dropout", dropout, high=1.0, open_high=True)
    check_number("learning_rate", learning_rate, open_interval=True)
    check_number("weight_decay", weight_decay)
    check_number("label_smoothing", label_smoothing, high=1.0, open_high=True)
    if label_smoothing > 0 and task == "regression":
        raise ConfigError(f"label_smoothing applies to classes; task='regression'. Received: {label_smoothing}")
    check_int("seed", seed, low=0, allow_none=True)


class _Layers:
    """Makes the model's layers, each with its own seed (equal widths must not mean equal draws)."""

    def __init__(self, seed: int | None, dropout: float, activation: str):
        self.seed, self.dropout, self.activation = seed, dropout, activation
        self._counter = iter(range(10**6))

    def next_seed(self):
        return None if self.seed is None else self.seed + next(self._counter)

    def dense(self, units: int, layer_name: str, act):
        init = keras.initializers.GlorotUniform(seed=self.next_seed())
        return keras.layers.Dense(units, activation=act, kernel_initializer=init, name=layer_name)

    def hidden(self, x, units: int, prefix: str, i: int, embedded=None):
        if embedded is None:
            x = self.dense(units, f"{prefix}_dense_{i}", self.activation)(x)
        else:  # act(W x + V [cos, sin] + b): the kernel W keeps one row per feature, as without an embedding
            x = self.dense(units, f"{prefix}_dense_{i}", None)(x)
            init = keras.initializers.GlorotUniform(seed=self.next_seed())
            extra = keras.layers.Dense(units, use_bias=False, kernel_initializer=init, name=f"{prefix}_embed")
            x = keras.layers.Add(name=f"{prefix}_sum_{i}")([x, extra(embedded)])
            x = keras.layers.Activation(self.activation, name=f"{prefix}_activation_{i}")(x)
        if self.dropout > 0:
            x = keras.layers.Dropout(self.dropout, seed=self.next_seed(), name=f"{prefix}_dropout_{i}")(x)
        return x

    def branch(self, gated, plan: ArchitecturePlan, branch):
        """One branch: its features of the gated input, their embeddings, and its dense layers."""
        prefix = f"branch_{branch.name}"
        x = ColumnSelector(plan.feature_indices(branch), name=f"{prefix}_select")(gated)
        embedded = [j for j, f in enumerate(branch.features) if f in plan.embeddings]
        periodic = None
        if embedded:
            selected = ColumnSelector(embedded, name=f"{prefix}_embed_select")(x)
            frequencies = [plan.embeddings[branch.features[j]] for j in embedded]
            periodic = PeriodicEncoding(frequencies, seed=self.next_seed(), name=f"{prefix}_periodic")(selected)
        if branch.categories:  # the first layer reads branch.first_layer_rows: other features, then embeddings
            x = _with_category_embeddings(x, branch, prefix, self.next_seed)
        for i, units in enumerate(branch.units, start=1):
            x = self.hidden(x, units, prefix, i, periodic if i == 1 else None)
        return x

    def output(self, x, task: str, n_outputs: int, ensemble_size: int):
        out_activation = {"regression": "linear", "binary": "sigmoid", "multiclass": "softmax"}[task]
        if ensemble_size == 1:
            return self.dense(n_outputs, "output", out_activation)(x)
        members = EnsembleHead(n_outputs, seed=self.next_seed(), name="output")(x)
        spread = {"regression": "squared", "binary": "sigmoid", "multiclass": "softmax"}[task]
        outputs = EnsembleMean(spread, name="ensemble_mean")(members)
        if task != "regression":
            outputs = keras.layers.Activation(out_activation, name="output_activation")(outputs)
        return outputs


def _compile(model, task, optimizer, learning_rate, weight_decay, label_smoothing, steps_per_execution) -> None:
    if optimizer == "adam" and weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
        optimizer.exclude_from_weight_decay(var_names=list(_NOT_DECAYED))
    elif isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    model.compile(
        optimizer=optimizer, steps_per_execution=steps_per_execution, **_compile_arguments(task, label_smoothing)
    )
    if not model.optimizer.built:
        # Keras builds an optimizer inside the first training step when no distribution strategy is
        # in scope; a tf.function that creates variables is traced twice, so every fit paid for two
        # traces of its training step. Built here, it is traced once.
        model.optimizer.build(model.trainable_variables)

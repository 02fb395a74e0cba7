"""
Data-parallel training with MirroredStrategy
============================================

tf.distribute.MirroredStrategy trains the network, the gate and its re-scoring callback included.

    python examples/mirrored_training.py

Here the machine's CPU is split into two logical devices so that the example runs anywhere; on a
machine with GPUs, drop those two lines and MirroredStrategy() takes every GPU. Build (and compile)
the model inside ``strategy.scope()``; ``model.fit`` then splits each batch across the replicas, and
ImportanceRescoring's new penalties reach every replica's copy of the gate. (Keras 3 does not support
MultiWorkerMirroredStrategy; for several machines, distribute the search instead: the user guide, "Scaling out".)

The training rows come as a repeated ``tf.data`` pipeline with ``steps_per_epoch``, and the held-out
rows go to the callback and to one ``evaluate`` at the end rather than to ``fit(validation_data=...)``
(``shuffle=False``: the pipeline shuffles).
Given arrays, Keras makes a new distributed iterator for every epoch's training and validation and
drops the old one; with TensorFlow-CPU 2.21 and Keras 3.15, dropping one crashed the process
(SIGSEGV, inside Keras' ``evaluate``) in 1 of 143 runs of the array version of this example on a
2-core machine running two to four of them at once. This way one iterator serves the whole fit.
"""

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from sklearn.datasets import make_friedman1  # noqa: E402 (after the devices are set up)

import archguide as ag  # noqa: E402

X, y = make_friedman1(n_samples=2_500, n_features=20, noise=1.0, random_state=0)
X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
X_train, y_train, X_val, y_val = X[:2000], y[:2000], X[2000:], y[2000:]

scores = ag.score_features(X_train, y_train, random_state=0)
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
with strategy.scope():
    model = ag.build_model(ag.plan_architecture(scores), seed=0)
batch_size = 128
train = tf.data.Dataset.from_tensor_slices((X_train, y_train)).shuffle(len(X_train), seed=0).repeat().batch(batch_size)
rescoring = ag.ImportanceRescoring(validation_data=(X_val, y_val), random_state=0)
model.fit(train, steps_per_epoch=len(X_train) // batch_size, epochs=10, shuffle=False, callbacks=[rescoring], verbose=2)
print(f"validation: {model.evaluate(X_val, y_val, batch_size=batch_size, verbose=0, return_dict=True)}")
print(f"{strategy.num_replicas_in_sync} replicas; network importance at the end:")
print(rescoring.history_.iloc[-1].drop("epoch").sort_values(ascending=False).head(8))

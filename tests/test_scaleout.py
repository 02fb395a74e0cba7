"""Scale-out on engines that exist, each on this machine over loopback: KerasTuner's chief/worker
search, scoring on a dask cluster through joblib, data-parallel training with MirroredStrategy."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from conftest import run_python

import archguide as ag
from archguide.exceptions import ConfigError

pytestmark = pytest.mark.slow

SEARCH = textwrap.dedent(
    """
    import os, sys
    from sklearn.datasets import make_friedman1
    import archguide as ag
    import archguide.tuning.hypermodel

    if os.environ.get("DIE_IN_TRIAL"):  # a worker that dies in its first trial
        # FoldedHyperModel is what tune searches with.
        archguide.tuning.hypermodel.FoldedHyperModel.fit = lambda *args, **kwargs: os._exit(3)
    X, y = make_friedman1(300, n_features=8, noise=1.0, random_state=0)
    estimator = ag.ImportanceGuidedRegressor(epochs=3, patience=2, random_state=0, verbose=1)
    estimator.tune(X, y, max_trials=int(sys.argv[2]), tuner="random", directory=sys.argv[1], overwrite=True,
                   worker_timeout=float(sys.argv[3]), timeout=300)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, tuner_id, port, *args, env=None):
    environment = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}  # fmt: skip
    script = tmp_path / "search.py"
    script.write_text(SEARCH)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "project"), *map(str, args)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(processes, timeout):
    """Each process's (return code, stdout, stderr); all are killed if any outlives the timeout."""
    deadline, outputs = time.monotonic() + timeout, []
    try:
        for p in processes:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((p.returncode, out, err))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return outputs


def test_a_dead_worker_does_not_leave_the_chief_waiting(tmp_path):
    port = _free_port()
    start = time.monotonic()
    chief = _start(tmp_path, "chief", port, 3, 5)
    worker = _start(tmp_path, "tuner0", port, 3, 5, env={"DIE_IN_TRIAL": "1"})
    (chief_code, _, chief_err), (worker_code, _, _) = _finish([chief, worker], timeout=240)
    assert worker_code == 3
    assert time.monotonic() - start < 200  # bounded: 5 s of silence, not KerasTuner's hour
    assert "Every worker stopped answering (tuner0; their running trials ended as FAILED)" in chief_err
    assert chief_code == 1 and "The search completed no trial" in chief_err  # nothing to refit: said plainly


def test_serve_chief_outside_a_chief_is_refused(monkeypatch):
    from archguide.tuning.hypermodel import distributed_role, serve_chief

    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert distributed_role() is None
    with pytest.raises(ConfigError, match="serve_chief runs in the chief process"):
        serve_chief(object())
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    with pytest.raises(ConfigError, match="KERASTUNER_ORACLE_PORT is not"):
        distributed_role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    assert distributed_role() == "tuner3"


def test_scores_on_a_dask_cluster_are_the_default_backends():
    joblib = pytest.importorskip("joblib")
    distributed = pytest.importorskip("distributed")
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(600, n_features=10, random_state=0)
    reference = ag.score_features(X, y, random_state=0, n_jobs=2)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        distributed.get_task_stream(client) as tasks,
        joblib.parallel_config(backend="dask"),
    ):
        on_dask = ag.score_features(X, y, random_state=0, n_jobs=2)
    assert len(tasks.data) > 0  # the forests' trees were fitted by the cluster
    np.testing.assert_allclose(on_dask.importances, reference.importances, rtol=1e-9, atol=1e-12)
    assert on_dask.weak.equals(reference.weak) and on_dask.groups == reference.groups


MIRRORED = textwrap.dedent(
    """
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from sklearn.datasets import make_friedman1
    import archguide as ag

    X, y = make_friedman1(600, n_features=10, noise=0.5, random_state=0)
    X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    scores = ag.score_features(X[:480], y[:480], random_state=0)
    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    with strategy.scope():
        model = ag.build_model(ag.plan_architecture(scores), seed=0)
    rescoring = ag.ImportanceRescoring(validation_data=(X[480:], y[480:]), method="gradient", random_state=0)
    gate = model.get_layer("gate")
    before = gate.get_strengths().tolist()
    val_before = model.evaluate(X[480:], y[480:], batch_size=64, verbose=0, return_dict=True)["data_loss"]
    # One iterator for the whole fit (examples/mirrored_training.py says why).
    train = tf.data.Dataset.from_tensor_slices((X[:480], y[:480])).shuffle(480, seed=0).repeat().batch(64)
    model.fit(train, steps_per_epoch=480 // 64, epochs=4, shuffle=False, callbacks=[rescoring], verbose=0)
    val_after = model.evaluate(X[480:], y[480:], batch_size=64, verbose=0, return_dict=True)["data_loss"]
    replicas = [np.asarray(v).tolist() for v in getattr(gate.strength.value, "values", [gate.strength.value])]
    print("RESULT " + json.dumps({
        "replicas": strategy.num_replicas_in_sync, "before": before, "after": gate.get_strengths().tolist(),
        "copies": replicas, "val": [val_before, val_after], "rescored": len(rescoring.history_),
        "prediction": model.predict(X[:5], verbose=0).ravel().tolist()}))
    """
)


def test_mirrored_strategy_trains_the_gate_and_rescores_on_two_devices():
    done = run_python(MIRRORED, timeout=300)
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["replicas"] == 2
    assert result["rescored"] == 4
    assert result["after"] != result["before"]  # the callback moved the penalties
    assert len(result["copies"]) == 2 and all(copy == result["after"] for copy in result["copies"])  # on both
    assert result["val"][-1] < result["val"][0] and np.all(np.isfinite(result["prediction"]))


def test_a_chief_without_workers_returns(tmp_path):
    port = _free_port()
    start = time.monotonic()
    ((code, _, err),) = _finish([_start(tmp_path, "chief", port, 3, 8)], timeout=200)
    assert time.monotonic() - start < 150
    assert "No worker asked for a trial in 8 s" in err and "The search completed no trial" in err and code == 1


def test_archguide_tune_as_a_chief_and_two_workers(tmp_path):
    """The command line, as the user guide's "Scaling out" runs it: the trials are shared, none twice."""
    import pandas as pd
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(300, n_features=6, noise=1.0, random_state=0)
    data = tmp_path / "data.csv"
    pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(target=y).to_csv(data, index=False)
    port = _free_port()
    command = [sys.executable, "-m", "archguide", "tune", str(data), "--target", "target", "--max-trials", "6",
               "--set", "training.epochs=3", "--set", "training.random_state=0",
               "--set", "tuning.tuner=random"]  # fmt: skip

    def start(tuner_id, *extra):
        env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
        return subprocess.Popen([*command, "--out", str(tmp_path / f"run-{tuner_id}"), *extra], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    (chief_code, chief_out, chief_err), *workers = _finish(
        [start("chief"), start("tuner0", "-v"), start("tuner1", "-v")], timeout=500
    )
    assert chief_code == 0, chief_err[-3000:]
    assert all(code == 0 for code, _, _ in workers), [err[-2000:] for _, _, err in workers]
    assert "this process is 'chief'" in chief_out and "6 of 6 trials completed" in chief_out
    trials = pd.read_csv(tmp_path / "run-chief" / "tuning.csv", dtype={"trial": str})
    assert len(trials) == 6 and set(trials["status"]) == {"COMPLETED"}
    columns = ["total_units", "grouping", "depth", "l1", "learning_rate", "dropout"]
    assert not trials.duplicated(columns).any()  # six different trials
    ran = []
    for _, out, _ in workers:
        assert "the chief writes the run" in out
        line = next(line for line in out.splitlines() if " ran trials " in line)
        ran.append(set(line.split(" ran trials ")[1].strip().split(", ")) - {"none"})
    assert ran[0] and ran[1], ran  # both workers ran trials
    assert not ran[0] & ran[1]  # none twice
    assert ran[0] | ran[1] == set(trials["trial"])
    assert not (tmp_path / "run-tuner0").exists() and not (tmp_path / "run-tuner1").exists()  # workers write nothing
    model = ag.load(tmp_path / "run-chief" / "model.keras")
    assert np.all(np.isfinite(model.predict(pd.DataFrame(X[:3], columns=[f"x{i}" for i in range(6)]))))


def test_the_chief_ends_a_search_at_its_timeout_with_one_warning(tmp_path, monkeypatch):
    """A worker that takes a trial and hangs (alive, so never silent for worker_timeout) is ended by timeout."""
    import grpc
    import keras_tuner as kt
    from keras_tuner.src import protos
    from sklearn.datasets import make_friedman1

    from archguide.exceptions import ArchguideWarning
    from archguide.tuning.hypermodel import ImportanceHyperModel, serve_chief

    port = _free_port()
    for name, value in {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                        "KERASTUNER_ORACLE_PORT": str(port)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    X, y = make_friedman1(200, n_features=6, noise=1.0, random_state=0)
    tuner = kt.RandomSearch(ImportanceHyperModel(ag.score_features(X, y, random_state=0)), max_trials=3,
                            directory=tmp_path, project_name="search")  # fmt: skip

    def hanging_worker():
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = protos.get_service_grpc().OracleStub(channel)
        response = stub.CreateTrial(protos.get_service().CreateTrialRequest(tuner_id="tuner0"), wait_for_ready=True,
                                    timeout=30)  # fmt: skip
        channel.close()
        return response.trial.trial_id

    taken = []
    threading.Thread(target=lambda: taken.append(hanging_worker()), daemon=True).start()
    start = time.monotonic()
    with pytest.warns(ArchguideWarning) as caught:
        given_up = serve_chief(tuner, worker_timeout=600, timeout=4, poll=0.2)
    assert time.monotonic() - start < 30
    assert given_up == 1 and len(taken) == 1
    ours = [w for w in caught if issubclass(w.category, ArchguideWarning)]
    assert len(ours) == 1  # one warning says it all
    message = str(ours[0].message)
    assert "The search's timeout (4 s) passed: it ends with 1 trials" in message
    assert "trials still running on tuner0 ended as FAILED" in message
    trial = tuner.oracle.trials[taken[0]]
    assert trial.status == "FAILED" and "timeout" in trial.message
    assert not tuner.oracle.ongoing_trials and not tuner.oracle.tuner_ids

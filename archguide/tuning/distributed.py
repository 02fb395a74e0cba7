"""The chief of a distributed search: KerasTuner's own chief/worker mode, with bounded waits."""

from __future__ import annotations

import time
import warnings

import keras_tuner

from archguide._distributed import distributed_role, oracle_address
from archguide.exceptions import ArchguideWarning, ConfigError


def serve_chief(tuner, *, worker_timeout: float = 3600.0, timeout: float | None = None, poll: float = 1.0) -> int:
    """Serve ``tuner``'s oracle to the workers until the search ends: the chief's ``search``, with bounded waits.

    KerasTuner's chief (``tuner.search`` with ``KERASTUNER_TUNER_ID=chief``) waits for every
    worker to finish, without limit: a worker that dies keeps its trial running, and the chief
    waits forever. This is the same gRPC service, with two bounds. A worker not heard from for
    ``worker_timeout`` seconds (workers report at every epoch's end, and ask for a trial after
    each) is given up: its trial ends as ``FAILED`` and the chief no longer waits for it; if no
    worker has asked for a trial within ``worker_timeout`` of the start, the chief returns. After
    ``timeout`` seconds in all, every trial still running ends as ``FAILED`` and the chief
    returns. A search that ends in any of these ways is reported by one
    :class:`~archguide.exceptions.ArchguideWarning` that says why and which workers were given up.

    Args:
        tuner: A KerasTuner tuner built in the chief process (``KERASTUNER_TUNER_ID=chief``).
        worker_timeout: Seconds of silence after which a worker is given up.
        timeout: Seconds after which the search is ended (None: no limit).
        poll: Seconds between checks.

    Returns:
        The number of workers given up, for silence or at the timeout.

    Raises:
        ConfigError: this process is not the chief.
    """
    if distributed_role() != "chief":
        raise ConfigError(
            "serve_chief runs in the chief process: set KERASTUNER_TUNER_ID=chief, KERASTUNER_ORACLE_IP and "
            "KERASTUNER_ORACLE_PORT."
        )
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    oracle = tuner.oracle
    servicer = _watchful_servicer(oracle)
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    address = oracle_address()
    if not server.add_insecure_port(address):
        raise ConfigError(f"The chief could not listen on {address} (KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT).")
    server.start()
    start, given_up, ending = time.monotonic(), [], None
    try:
        while True:
            time.sleep(poll)
            now = time.monotonic()
            for tuner_id, last in list(servicer.last_seen.items()):
                if tuner_id not in given_up and tuner_id in oracle.tuner_ids and now - last > worker_timeout:
                    _give_up(oracle, tuner_id, f"worker {tuner_id!r} silent for {now - last:.0f} s")
                    given_up.append(tuner_id)
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                break
            if not servicer.last_seen and now - start > worker_timeout:
                ending = (
                    f"No worker asked for a trial in {worker_timeout:g} s (worker_timeout): the search ends with "
                    "no trials. Start workers with KERASTUNER_TUNER_ID=tuner0, tuner1, ... and the chief's address."
                )
                break
            if given_up and not oracle.tuner_ids and not oracle.ongoing_trials:
                ending = (
                    f"Every worker stopped answering ({', '.join(given_up)}; their running trials ended as FAILED): "
                    f"the search ends with {len(oracle.trials)} trials."
                )
                break
            if timeout is not None and now - start > timeout:
                running = sorted(oracle.tuner_ids)
                for tuner_id in running:
                    _give_up(oracle, tuner_id, f"the search's timeout ({timeout:g} s) passed")
                ending = (
                    f"The search's timeout ({timeout:g} s) passed: it ends with {len(oracle.trials)} trials; "
                    f"trials still running on {', '.join(running) or 'no worker'} ended as FAILED."
                )
                if given_up:
                    ending += f" Given up before, silent for {worker_timeout:g} s: {', '.join(given_up)}."
                given_up += running
                break
    finally:
        server.stop(grace=5)
    if ending is None and given_up:
        ending = f"Gave up {len(given_up)} worker(s) that stopped answering: {', '.join(given_up)}."
    if ending is not None:
        warnings.warn(ending, ArchguideWarning, stacklevel=2)
    return len(given_up)


def _give_up(oracle, tuner_id: str, reason: str) -> None:
    """End ``tuner_id``'s running trial as FAILED and stop waiting for that worker."""
    trial = oracle.ongoing_trials.get(tuner_id)
    if trial is not None:
        trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
        trial.message = reason
        oracle.end_trial(trial)
    oracle.tuner_ids.discard(tuner_id)


def _watchful_servicer(oracle):
    """KerasTuner's oracle service, noting when each worker was last heard from (``last_seen``)."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class WatchfulServicer(OracleServicer):
        def __init__(self, oracle):
            super().__init__(oracle)
            self.last_seen: dict[str, float] = {}

        def _heard(self, trial_id):
            for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
                if trial.trial_id == trial_id:
                    self.last_seen[tuner_id] = time.monotonic()

        def CreateTrial(self, request, context):  # gRPC's method names
            self.last_seen[request.tuner_id] = time.monotonic()
            return super().CreateTrial(request, context)

        def UpdateTrial(self, request, context):
            self._heard(request.trial_id)
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            self._heard(request.trial.trial_id)
            return super().EndTrial(request, context)

    return WatchfulServicer(oracle)

"""KerasTuner's distributed mode as archguide reads it: the environment only (no Keras, no KerasTuner).

The command line decides who writes the run before it imports TensorFlow.
"""

from __future__ import annotations

import os

from archguide.exceptions import ConfigError

__all__ = ["distributed_role", "oracle_address"]


def distributed_role() -> str | None:
    """This process's part in KerasTuner's distributed search: ``"chief"``, a worker's tuner id, or None.

    KerasTuner reads three environment variables: ``KERASTUNER_ORACLE_IP`` and
    ``KERASTUNER_ORACLE_PORT`` (where the chief serves the oracle) and ``KERASTUNER_TUNER_ID``
    (``chief`` for the chief, any other name, such as ``tuner0``, for a worker).

    Raises:
        ConfigError: the address is set without a port or a tuner id.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(v)]
    if missing:
        raise ConfigError(
            f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "a distributed search needs the chief's address, its port and each process's tuner id."
        )
    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    return "chief" if "chief" in tuner_id else tuner_id


def oracle_address() -> str:
    """The chief's ``ip:port``, from ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``."""
    return f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"

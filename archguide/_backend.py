"""Import Keras, or fail with one sentence that says what to install."""

from __future__ import annotations

INSTALL_HINT = (
    "archguide needs Keras 3 with a backend, and none could be imported: "
    'install one with `pip install "archguide[cpu]"` (TensorFlow, CPU only) '
    'or `pip install "archguide[gpu]"` (TensorFlow with GPU support).'
)


def import_keras():
    """Return the ``keras`` module (Keras 3 with a working backend).

    Raises:
        ImportError: Keras 3 or its backend is not installed.
    """
    try:
        import keras
    except ImportError as exc:  # keras missing, or keras present but its backend missing
        raise ImportError(f"{INSTALL_HINT} (The import failed with: {exc})") from exc
    major = int(str(getattr(keras, "__version__", "0")).split(".")[0] or 0)
    if major < 3:
        raise ImportError(f"{INSTALL_HINT} (Found Keras {keras.__version__}.)")
    return keras

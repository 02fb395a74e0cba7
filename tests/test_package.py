import os
import subprocess
import sys
import textwrap

import pytest

import archguide as ag

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Block())
import archguide
"""


def test_public_names():
    for name in ag.__all__:
        assert hasattr(ag, name), name
    assert ag.__version__
    assert issubclass(ag.DataError, ValueError) and issubclass(ag.DataError, ag.ArchguideError)
    assert issubclass(ag.ConfigError, ValueError)
    assert issubclass(ag.ArchguideWarning, UserWarning)


@pytest.mark.parametrize("blocked", [{"tensorflow"}, {"keras", "tensorflow"}])
def test_import_without_a_backend_says_what_to_install(blocked):
    code = textwrap.dedent(BLOCKER.format(blocked=blocked))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: archguide needs Keras 3 with a backend")
    assert 'pip install "archguide[cpu]"' in last


def test_scoring_and_planning_modules_do_not_import_keras():
    # Import the submodules without the package's __init__ pulling Keras in first.
    code = "import importlib.util, sys, types\n" + textwrap.dedent(
        """
        spec = importlib.util.find_spec("archguide")
        pkg = types.ModuleType("archguide"); pkg.__path__ = spec.submodule_search_locations
        sys.modules["archguide"] = pkg
        import archguide.scoring.score, archguide.config, archguide.report, archguide.schema
        print("keras" in sys.modules, "tensorflow" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.split() == ["False", "False"], result.stderr

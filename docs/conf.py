"""Sphinx configuration of archguide's documentation (``make docs``).

The ecosystem's stack, as scikit-learn builds its site: Sphinx with the PyData theme, the API
reference from the docstrings (autodoc; napoleon reads their Google style, the style Keras
uses), an examples gallery whose scripts run during the build (sphinx-gallery), and the user
guide and benchmark pages in Markdown (MyST). Nothing is downloaded during the build: there is
no intersphinx.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import archguide  # noqa: E402

project = "archguide"
author = "the archguide developers"
copyright = "the archguide developers"
release = version = archguide.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]  # prose names sections of other pages in words, not links

autodoc_default_options = {"show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autosummary_generate = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: autodoc documents the properties themselves
napoleon_custom_sections = [("Warns", "params_style")]
nitpicky = False

html_theme = "pydata_sphinx_theme"
html_title = f"archguide {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Every example runs during the build and shows its plots, but two that need a process of their own
    # (virtual CPU devices set before TensorFlow starts; a dask cluster): shown, run by tests/test_examples.py.
    "filename_pattern": r"^((?!mirrored_training|dask_scoring).)*\.py$",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "write_computation_times": False,
}

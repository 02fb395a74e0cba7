"""The documentation site builds with warnings as errors, runs its gallery and opens in a browser."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHROMIUM_FLAGS, chromium

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The whole site as ``make docs`` builds it (the gallery's examples run), from a scratch copy of docs/
    (what the build generates stays out of the repository)."""
    pytest.importorskip("sphinx_gallery")
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(
        ROOT / "docs", source / "docs", ignore=shutil.ignore_patterns("_build", "auto_examples", "generated")
    )
    for shared in ["DESIGN.md", "benchmarks", "examples"]:
        (source / shared).symlink_to(ROOT / shared)
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(source / "docs"), str(out)],
        capture_output=True, text=True, timeout=1200, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.slow
def test_every_page_of_the_site_is_built_and_the_api_reference_names_every_stage(site):
    for page in ["index", "quickstart", "api", "design", "development", "auto_examples/index"]:
        assert (site / f"{page}.html").exists(), page
    stages = ["scoring", "planning", "building", "rescoring", "estimators", "streaming", "tuning", "cli", "report"]
    for page in stages:
        assert (site / "user_guide" / f"{page}.html").exists(), page
    api = (site / "api.html").read_text()
    for name in ["score_features", "plan_architecture", "build_model", "ImportanceRescoring", "network_importance",
                 "ImportanceGuidedRegressor", "ImportanceHyperModel", "load", "write_predictions"]:  # fmt: skip
        assert f'id="archguide.{name}"' in api, name
    assert "Table 6, with noise columns" in (site / "benchmarks" / "real_tables.html").read_text()
    assert "950,000 rows against 800,000" in (site / "benchmarks" / "streaming.html").read_text()


@pytest.mark.slow
def test_the_gallery_ran_its_examples_and_shows_their_plots(site):
    gallery = site / "auto_examples"
    page = (gallery / "score_features.html").read_text()
    assert "informative (x0..x4, x3_copy) all above every noise feature: True" in page  # the example's output
    images = re.findall(r'src="(\.\./_images/sphx_glr_[^"]+\.png)"', page)
    assert images and all((gallery / image).exists() for image in images)
    fitted = (gallery / "estimator_mixed_table.html").read_text()
    assert "loaded model predicts exactly as the fitted one: True" in fitted
    assert len(set(re.findall(r'src="\.\./_images/(sphx_glr_estimator_mixed_table_\d+\.png)"', fitted))) == 2


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_site_opens_in_a_headless_browser_and_the_gallery_images_load(site, tmp_path):
    probe = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length,"
        " decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length})); });</script>"
    )
    found = {}
    for name in ["index.html", "auto_examples/index.html"]:
        page = site / name
        probed = page.with_name("probed_" + page.name)
        probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
        command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                   "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()]  # fmt: skip
        dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
        match = re.search(r"data-probe=\"([^\"]+)\"", dom)
        assert match, dom[:500]
        found[name] = json.loads(match.group(1).replace("&quot;", '"'))
    assert found["index.html"]["images"] >= 1 and found["index.html"]["decoded"] == found["index.html"]["images"]
    gallery = found["auto_examples/index.html"]
    assert gallery["images"] >= 6 and gallery["decoded"] == gallery["images"]  # a thumbnail per example


def test_the_readme_is_a_front_page_whose_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert len(links) >= 10
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert missing == []
    for command in ["make demo", "make test", "make docs", "python -m benchmarks.peers --rebuild"]:
        assert command in readme

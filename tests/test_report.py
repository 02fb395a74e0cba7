"""Run directories and their reports (archguide.report), and the page in a real headless browser."""

import base64
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from conftest import CHROMIUM_FLAGS, chromium

import archguide as ag
from archguide.config import load_config
from archguide.exceptions import ConfigError
from archguide.report import check_run_directory, load_run, render_markdown, save_run, write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((300, 6)), columns=["a", "b", "c", "n1", "n2", "n3"])
    X["kind"] = pd.Categorical(rng.choice(["x", "y"], 300))
    y = pd.Series((X["a"] * 2 + X["b"] + 0.1 * rng.standard_normal(300)).to_numpy(), index=np.arange(300) * 7 + 3)
    est = ag.ImportanceGuidedRegressor(epochs=12, random_state=0).fit(X, y)
    out = tmp_path_factory.mktemp("runs") / "run"
    save_run(est, out, X=X, y=y, config=load_config(), data_path="table.csv", target="y", fit_seconds=1.5)
    return out, est


def test_the_html_report_is_one_self_contained_file(run_dir):
    out, est = run_dir
    html = (out / "report.html").read_text()
    assert not re.search(r"<script|<link|src=\"(?!data:)|url\(", html)  # nothing fetched from elsewhere
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3
    assert all(base64.b64decode(image).startswith(PNG) for image in images)
    for heading in (
        "Data",
        "Final metrics",
        "Feature scores",
        "The plan",
        "Training",
        "Importance and penalties across re-scorings",
        "Sensitive but not important",
        "Configuration",
    ):
        assert f"<h2>{heading}</h2>" in html  # fmt: skip
    for branch in est.plan_.branches:
        assert f"<td>{branch.name}</td>" in html
    weak = [f for f in est.scores_.features if est.scores_.weak[f]]
    assert weak and all(f"<td>{f}</td>" in html for f in weak)
    assert "table.csv" in html and "fitted in 1.5 s" in html


def test_the_markdown_report_links_figures_that_exist(run_dir):
    out, _ = run_dir
    text = (out / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert links == ["figures/scores.png", "figures/plan.png", "figures/history.png"]
    assert all((out / link).read_bytes().startswith(PNG) for link in links)
    assert "| feature | importance | std | group | weak |" in text


def test_flagged_columns_are_listed_as_sensitive_but_not_important(run_dir, tmp_path):
    out, est = run_dir
    original = (out / "report.md").read_text().split("## Sensitive but not important")[1]
    assert ("None was flagged" in original) == (not est.sensitivity_["flagged"].any())
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    sensitivity = pd.read_csv(copy / "sensitivity.csv")
    sensitivity.loc[sensitivity["column"] == "n2", ["held_out", "training", "flagged"]] = [0.0, 0.2, True]
    sensitivity.loc[sensitivity["column"] == "a", ["held_out", "training", "flagged"]] = [0.01, 0.5, True]
    sensitivity.to_csv(copy / "sensitivity.csv", index=False)
    write_report(copy)
    text = (copy / "report.md").read_text()
    section = text.split("## Sensitive but not important")[1]
    assert est.scores_.weak["n2"] and not est.scores_.weak["a"]
    assert "| n2 | 0 | 0.2 | weak |" in section and "| a | 0.01 | 0.5 | important |" in section
    assert "None was flagged" not in section


def test_a_run_without_rescoring_has_no_trajectory_section(run_dir, tmp_path):
    out, _ = run_dir
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "rescoring.csv").write_text("")
    (copy / "strengths.csv").write_text("")
    run = load_run(copy)
    assert run.rescoring.empty
    assert "## Importance and penalties" not in render_markdown(run)
    write_report(copy)


def test_save_run_refuses_a_non_empty_directory_and_leaves_it(run_dir, tmp_path):
    _, est = run_dir
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        save_run(est, target, X=pd.DataFrame(np.zeros((3, 7))), y=[1, 2, 3])
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_run_directory(tmp_path / "file")
    check_run_directory(tmp_path / "empty")  # missing: fine
    (tmp_path / "empty").mkdir()
    check_run_directory(tmp_path / "empty")  # empty: fine


def test_a_failing_write_leaves_no_directory_behind(run_dir, tmp_path, monkeypatch):
    _, est = run_dir
    import archguide.report as report

    def broken(directory):
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_report", broken)
    with pytest.raises(OSError, match="disk full"):
        save_run(est, tmp_path / "new", X=pd.DataFrame(np.zeros((3, 7))), y=[1.0, 2.0, 3.0])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_report_renders_in_a_headless_browser(run_dir, tmp_path):
    out, _ = run_dir
    # A copy of the page with a script that writes what the browser made of it into the DOM.
    probe = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length,"
        " decoded: imgs.filter(i => i.complete && i.naturalWidth > 300).length,"
        " width: document.body.scrollWidth, headings: document.querySelectorAll('h2').length})); });</script>"
    )
    page = tmp_path / "page.html"
    page.write_text((out / "report.html").read_text().replace("</body>", probe + "</body>"))
    common = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000"]
    dom = subprocess.run(
        [*common, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"data-probe=\"([^\"]+)\"", dom)
    assert found, dom[:500]
    probe_data = found.group(1).replace("&quot;", '"')
    import json

    result = json.loads(probe_data)
    assert result["images"] == 3 and result["decoded"] == 3  # every embedded image decodes
    assert result["headings"] >= 7
    assert result["width"] <= 1200  # no horizontal scrolling at a laptop's width
    shot = tmp_path / "report.png"
    subprocess.run([*common, f"--screenshot={shot}", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 50_000


def test_the_proxy_importance_column_is_the_proxys_even_after_a_re_plan(run_dir):
    from dataclasses import replace

    out, est = run_dir
    run = load_run(out)
    # a re-planned run's final plan was made from the network's importances, not the proxy's
    network_view = {f: 100.0 + i for i, f in enumerate(run.plan.importances)}
    replanned = replace(run, plan=replace(run.plan, importances=network_view))
    text = render_markdown(replanned)
    section = text.split("## Importance and penalties across re-scorings")[1].split("\n## ")[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ") and "feature" not in line]
    assert rows
    for feature, shown in rows:
        assert float(shown) == pytest.approx(float(est.scores_.importances[feature.strip()]), rel=1e-3, abs=1e-4)

"""The interactive sampler as a user meets it: JupyterLab on 127.0.0.1, notebook 11 in headless
Chromium, its cells run, Generate clicked, the animation waited for, a screenshot under runs/browser/.

Chromium is Debian's (``apt-get install -y chromium``) driven by Playwright from PyPI (the
``browser`` extra) through ``executable_path``: Playwright's own browser download (``playwright
install``) cannot work offline and is never used. ``make browser-test`` installs the extra and runs
this; elsewhere it is skipped, saying what is missing. Everything Jupyter writes (config, data,
runtime, settings, workspaces) goes to a temporary folder; the news notification and autosave are
off there (the first would cover the screenshot, the second would write outputs into the notebook).
"""

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sora_mini.paths import project_root

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SORA_MINI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOK = "11_interactive.ipynb"
START_S = 120  # the server up, the notebook open and its kernel idle
CELLS_S = 600  # every cell run (training the tiny pipeline first when runs/tiny has none)
ANIMATION_S = 30  # the stated limit from the Generate click to the animation on screen (target: 3 s at small)
# the notebook's SCALE: "tiny" as stored (a pipeline trained in seconds when missing), or e.g. "small" (the
# shipped model; `make browser-test SCALE=small`), served from a copy whose parameters cell says so
SCALE = os.environ.get("SORA_MINI_BROWSER_SCALE", "tiny")

KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && panel.context.isReady;
}"""
RUN_ALL = """() => {
  window.__soraRan = undefined;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__soraRan = ok; }, err => { window.__soraRan = String(err); });
}"""
CELL_ERRORS = """() => {
  const errors = [];
  window.jupyterapp.shell.currentWidget.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    for (let j = 0; j < cell.model.outputs.length; j++) {
      const o = cell.model.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    }
  });
  return errors;
}"""
ANIMATION_SHOWN = """() => {
  const img = document.querySelector('img.sora-mini-result');
  return !!img && img.offsetParent !== null && img.complete && img.naturalWidth > 0;
}"""


def _require_tools() -> None:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright is not installed: `make browser-test` installs it (pip, the `browser` extra)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's (`apt-get install -y chromium`) or point "
                    "SORA_MINI_CHROMIUM at one (Playwright's own download, `playwright install`, is not used)")
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("JupyterLab is not installed: pip install -e '.[notebooks]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter_env(root: Path) -> dict:
    """The Jupyter folders under ``root``, with the news notification and autosave turned off."""
    dirs = {name: root / name.lower() for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                                                    "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR")}
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab"
    for plugin, values in (("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
                           ("docmanager-extension/plugin", {"autosave": False})):
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return {k: str(v) for k, v in dirs.items()}


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {START_S} s:\n{log.read_text()[-3000:]}")


def _served_notebooks(tmp_path: Path) -> Path:
    """notebooks/ itself at tiny; at another SCALE a folder holding a copy of the notebook whose
    parameters cell sets that scale (and the project's runs/ as its run folder)."""
    if SCALE == "tiny":
        return project_root() / "notebooks"
    nb = json.loads((project_root() / "notebooks" / NOTEBOOK).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    assert 'SCALE = "tiny"' in source and 'RUN_DIR = "runs"' in source, source
    runs = json.dumps(str(project_root() / "runs"))
    cell["source"] = source.replace('SCALE = "tiny"', f"SCALE = {json.dumps(SCALE)}").replace(
        'RUN_DIR = "runs"', f"RUN_DIR = {runs}")
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / NOTEBOOK).write_text(json.dumps(nb))
    return folder


@pytest.fixture
def lab(tmp_path):
    """(url, token, folder) of a JupyterLab serving notebooks/ (or the copy of ``_served_notebooks``);
    stopped by its own process id afterwards."""
    _require_tools()
    served = _served_notebooks(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **_jupyter_env(tmp_path / "jupyter"), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "agg",
           "PYTHONPATH": os.pathsep.join(p for p in (str(project_root()), os.environ.get("PYTHONPATH")) if p)}
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={served}", "--LabApp.expose_app_in_browser=True"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{url}/api/status?token={token}", proc, log)
        yield url, token, served
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # the server by its own id: it shuts its kernels down and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_generate_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    url, token, served = lab
    notebook = served / NOTEBOOK
    stored = notebook.read_bytes()
    shots = project_root() / "runs" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_function(KERNEL_IDLE, timeout=START_S * 1000, polling=500)
            page.evaluate(RUN_ALL)
            page.wait_for_function("() => window.__soraRan !== undefined", timeout=CELLS_S * 1000, polling=500)
            errors = page.evaluate(CELL_ERRORS)
            assert page.evaluate("() => window.__soraRan") is True and not errors, errors
            generate, shown = page.locator("button.sora-mini-generate"), page.locator("img.sora-mini-result")
            generate.scroll_into_view_if_needed()
            assert not shown.is_visible(), "the widget showed a result before Generate was pressed"
            t0 = time.perf_counter()
            generate.click()
            page.wait_for_function(ANIMATION_SHOWN, timeout=ANIMATION_S * 1000, polling="raf")
            seconds = time.perf_counter() - t0
            reading = page.locator(".sora-mini-result-reading").inner_text()
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # the file browser off the picture
            shown.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "11_interactive.png"))
        finally:
            browser.close()
    (shots / "11_interactive.json").write_text(json.dumps(
        {"click_to_animation_s": round(seconds, 3), "limit_s": ANIMATION_S, "notebook": NOTEBOOK, "scale": SCALE},
        indent=2))
    print(f"\nGenerate click to the animation on screen at {SCALE}: {seconds:.2f} s (limit {ANIMATION_S} s); "
          f"screenshot {shots / '11_interactive.png'}")
    assert "the evaluator reads" in reading
    assert notebook.read_bytes() == stored, "the browser session wrote into the stored notebook"

"""A real browser against a real JupyterLab: open a lesson, run it, see its rendered output.

Starts `jupyter lab` on 127.0.0.1 with a token, drives Debian's Chromium headless with Playwright (no browser
download: `executable_path`), runs the index notebook's cells, checks the page shows the output, and saves
a screenshot to $TLTUTOR_ARTIFACTS (default: the system temp dir)."""
import os, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (course.sh test installs it as root)")


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp('jupyter')
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(home/'config'), 'JUPYTER_RUNTIME_DIR': str(home/'runtime'),
           'JUPYTER_DATA_DIR': str(home/'data'), 'TLTUTOR_SCALE': 'quick'}
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip', '127.0.0.1', f'--port={port}',
           f'--ServerApp.token={token}', f'--ServerApp.root_dir={ROOT/"nbs"}', '--LabApp.news_url=None']
    if os.geteuid() == 0: cmd.append('--allow-root')
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2); break
            except OSError: time.sleep(0.5)
        else: pytest.fail('JupyterLab did not answer on 127.0.0.1 within 60 s')
        yield base, token
    finally:
        proc.terminate()
        try: proc.wait(15)
        except subprocess.TimeoutExpired: proc.kill()


def test_lab_refuses_requests_without_the_token(lab):
    base, _ = lab
    with pytest.raises(urllib.error.HTTPError) as e: urllib.request.urlopen(f'{base}/api/contents', timeout=5)
    assert e.value.code == 403


def test_lab_never_asks_about_news(lab):
    "Set-up's overrides.json turns the news feed off, so no 'get notified about official Jupyter news?' pop-up."
    import json
    base, token = lab
    url = f'{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}'
    defaults = {k: v.get('default') for k, v in json.load(urllib.request.urlopen(url, timeout=10))['schema']['properties'].items()}
    assert defaults['fetchNews'] == 'false' and defaults['checkForUpdates'] is False, defaults   # overrides become the defaults


def test_a_lesson_runs_in_the_browser(lab):
    from playwright.sync_api import sync_playwright
    base, token = lab
    shots = Path(os.environ.get('TLTUTOR_ARTIFACTS') or tempfile.gettempdir())
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
            args=['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                  '--disable-sync', '--no-first-run', '--disable-quic'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        page.goto(f'{base}/lab/tree/index.ipynb?token={token}&reset', timeout=120_000)
        page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
        # the stored notebooks carry no kernel choice (nbdev_clean): accept the default Python 3 kernel
        accept = page.locator('.jp-Dialog .jp-mod-accept')
        try: accept.wait_for(timeout=20_000); accept.click()
        except Exception: pass   # a kernel was started without asking
        page.wait_for_selector('#jp-main-statusbar :text("Idle")', timeout=120_000)
        # clear the stored outputs, then run everything from the Run menu, as a learner would
        page.click('#jp-MainMenu >> text=Edit'); page.click('text=Clear Outputs of All Cells')
        page.wait_for_function("!document.querySelector('.jp-Notebook').innerText.includes('tltutor 0.')", timeout=30_000)
        page.click('#jp-MainMenu >> text=Run'); page.click('text=Run All Cells')
        out = page.locator('.jp-OutputArea-output:has-text("tltutor 0.")')
        out.wait_for(timeout=120_000)
        assert page.locator('.jp-InputPrompt:has-text("[1]:")').count() == 1   # executed by the kernel, now
        page.screenshot(path=str(shots/'browser-index.png'))
        assert page.locator('.jp-RenderedMarkdown').count() >= 1              # rendered markdown too
        browser.close()
    assert (shots/'browser-index.png').stat().st_size > 10_000

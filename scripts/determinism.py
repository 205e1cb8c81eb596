"""Run notebooks twice, headless, and fail if any text output differs between the two runs.

On one machine, in one environment, a seeded run must repeat bit for bit — training results included. So
this compares the outputs nbval leaves out too (`# NBVAL_IGNORE_OUTPUT`: results of training, which differ
*between* machines), after the sanitizing nbval uses (.ci/nbval_sanitize.cfg: timestamps, tqdm rates,
addresses, digits beyond the fourth decimal). Cells that print wall-clock times are the exception: mark
them `# TIMING` and they are left out, as are `# NBVAL_SKIP` cells. `--checked-only` compares only what
nbval compares."""
import configparser, re, sys, tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def sanitizers():
    "(regex, replacement) pairs from the nbval sanitize file."
    cfg = configparser.ConfigParser(interpolation=None); cfg.read(ROOT/'.ci'/'nbval_sanitize.cfg')
    return [(re.compile(cfg[s]['regex']), cfg[s]['replace']) for s in cfg.sections()]


def checked_text(nb, checked_only:bool=False) -> list[str]:
    "The sanitized text/plain and stream outputs of every compared code cell."
    subs, out = sanitizers(), []
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code' or 'NBVAL_SKIP' in c.source or '# TIMING' in c.source: continue
        if checked_only and 'NBVAL_IGNORE_OUTPUT' in c.source: continue
        for o in c.get('outputs', []):
            t = o.get('text') or o.get('data', {}).get('text/plain', '')
            for rx, rep in subs: t = rx.sub(rep, t)
            out.append(f"cell {i}: {t}")
    return out


def run(path: Path, checked_only:bool=False):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    return checked_text(nb, checked_only)


if __name__ == '__main__':
    bad, only = 0, '--checked-only' in sys.argv
    for p in (Path(a) for a in sys.argv[1:] if not a.startswith('--')):
        a, b = run(p, only), run(p, only)
        if a != b:
            bad += 1
            diff = [f"  run 1: {x[:200]!r}\n  run 2: {y[:200]!r}" for x, y in zip(a, b) if x != y]
            print(f"{p}: two runs differ\n" + '\n'.join(diff[:5]))
        else: print(f"{p}: two runs gave identical checked outputs ({len(a)} outputs)")
    sys.exit(1 if bad else 0)

"""Run notebooks twice, headless, and fail if any checked text output differs between the two runs.

Cells marked `# NBVAL_IGNORE_OUTPUT` or `# NBVAL_SKIP` are left out, as nbval leaves them out; text is
compared after the same sanitizing nbval uses (.ci/nbval_sanitize.cfg)."""
import configparser, re, sys, tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def sanitizers():
    "(regex, replacement) pairs from the nbval sanitize file."
    cfg = configparser.ConfigParser(interpolation=None); cfg.read(ROOT/'.ci'/'nbval_sanitize.cfg')
    return [(re.compile(cfg[s]['regex']), cfg[s]['replace']) for s in cfg.sections()]


def checked_text(nb) -> list[str]:
    "The sanitized text/plain and stream outputs of every checked code cell."
    subs, out = sanitizers(), []
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code' or 'NBVAL_IGNORE_OUTPUT' in c.source or 'NBVAL_SKIP' in c.source: continue
        for o in c.get('outputs', []):
            t = o.get('text') or o.get('data', {}).get('text/plain', '')
            for rx, rep in subs: t = rx.sub(rep, t)
            out.append(f"cell {i}: {t}")
    return out


def run(path: Path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    return checked_text(nb)


if __name__ == '__main__':
    bad = 0
    for p in map(Path, sys.argv[1:]):
        a, b = run(p), run(p)
        if a != b:
            bad += 1
            diff = [f"  run 1: {x[:200]!r}\n  run 2: {y[:200]!r}" for x, y in zip(a, b) if x != y]
            print(f"{p}: two runs differ\n" + '\n'.join(diff[:5]))
        else: print(f"{p}: two runs gave identical checked outputs ({len(a)} outputs)")
    sys.exit(1 if bad else 0)

"""Build the browsable HTML edition of the course into _site/ — offline, from PyPI packages only (nbconvert).

nbdev's own docs need Quarto, which cannot be installed here; this renders every notebook with its stored
outputs and plots, rewrites links between notebooks to the HTML pages, and writes _site/index.html from
nbs/index.ipynb.   Usage: python scripts/build_site.py [--out DIR] [NOTEBOOK ...]"""
import argparse, re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'


def notebooks() -> list[Path]:
    "Every notebook of the course: the index, the lessons, the library notebooks."
    return sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_'))


def render(nb_path: Path, out_dir: Path) -> Path:
    "One notebook as a standalone HTML page (outputs and plots embedded), links to notebooks made links to pages."
    nb = nbformat.read(nb_path, as_version=4)
    for c in nb.cells:   # nbdev directives are for the exporter, not for readers
        if c.cell_type == 'code': c.source = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|'))
    html, _ = HTMLExporter(template_name='lab', embed_images=True).from_notebook_node(nb)
    html = re.sub(r'href="(?!https?://)([^"#]+)\.ipynb', r'href="\1.html', html)
    rel = nb_path.relative_to(NBS).with_suffix('.html')
    dest = out_dir/rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(html, encoding='utf-8')
    return dest


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', type=Path)
    ap.add_argument('--out', type=Path, default=ROOT/'_site')
    a = ap.parse_args()
    todo = [p.resolve() for p in a.notebooks] or notebooks()
    for p in todo: print('wrote', render(p, a.out))

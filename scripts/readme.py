"""Write README.md from nbs/index.ipynb without Quarto (`--check`: fail if README.md is out of step)."""
import re, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
HEADER = '<!-- Generated from nbs/index.ipynb by `python scripts/readme.py`: edit the notebook, not this file. -->\n\n'


def readme_text(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    "The README's markdown: the index notebook's markdown cells, code cells as code blocks, links made repo-relative."
    nb = nbformat.read(nb_path, as_version=4)
    parts = []
    for c in nb.cells:
        if c.cell_type == 'markdown': parts.append(c.source.strip())
        elif c.cell_type == 'code' and c.source.strip() and not c.source.lstrip().startswith('#| hide'):
            parts.append(f"```python\n{c.source.strip()}\n```")
    text = '\n\n'.join(parts) + '\n'
    # links between notebooks are relative to nbs/; the README sits at the repository root
    return HEADER + re.sub(r'\]\((?!https?://|#)([^)]+\.ipynb)\)', r'](nbs/\1)', text)


if __name__ == '__main__':
    want, path = readme_text(), ROOT/'README.md'
    if '--check' in sys.argv:
        if not path.exists() or path.read_text() != want:
            sys.exit('README.md is out of step with nbs/index.ipynb: run `python scripts/readme.py`.')
        print('README.md is in step with nbs/index.ipynb')
    else:
        path.write_text(want); print(f'wrote {path}')

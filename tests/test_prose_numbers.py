"""Every number a notebook's prose states as measured appears in that notebook's own outputs (see prose_numbers.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prose_numbers import Claim, prose_claims, unsupported

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_numbers_appear_in_outputs(nb):
    bad = unsupported(nb)
    assert not bad, f"{nb.name}: numbers in the prose that no output of the notebook shows at that rounding " \
                    "(print them, or cite the literature in the same sentence):\n" + \
                    '\n'.join(f"  cell {c.cell}: {c.text} — {c.sentence[:140]!r}" for c in bad)


def _nb(md:str, out:str='', code:str='') -> dict:
    return {'cells': [{'cell_type': 'markdown', 'source': [md]},
                      {'cell_type': 'code', 'source': [code], 'outputs': [{'output_type': 'stream', 'text': [out]}]}]}


def _check(md, out='', code=''):
    import json, tempfile
    with tempfile.NamedTemporaryFile('w', suffix='.ipynb', delete=False) as f: json.dump(_nb(md, out, code), f)
    return [c.text for c in unsupported(Path(f.name))]


def test_checker_catches_what_it_should():
    assert _check("Fine-tuning reached 0.889.", "test 0.8893") == []            # rounded from the output
    assert _check("Fine-tuning reached 0.890.", "test 0.8893") == ['0.890']     # not the same rounding
    assert _check("The gap is −0.146 here.", "gap -0.146") == []                # sign kept, unicode minus
    assert _check("The gap is +0.146 here.", "gap -0.146") == ['+0.146']        # the wrong sign
    assert _check("It went 37% of the way.", "fraction 0.3684") == []           # a share printed as a fraction
    assert _check("We trained 54 networks.", "50 networks trained") == ['54']
    assert _check("We trained 50 networks.", "", "N = 50") == []                # a setting the code writes
    assert _check("Ganin et al. 2016 report 0.52 and 0.77.") == []              # from the literature
    assert _check("See lesson 05 and exercise 12, with $x = 0.5$ and `lr=3e-3`.") == []
    assert _check("MobileNetV2 on 28×28 images.") == []

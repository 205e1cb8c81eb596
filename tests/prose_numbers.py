"""Find the numbers a notebook's prose states that its own outputs do not show.

A lesson's markdown says what its experiment measured ("full fine-tuning reached 0.889", "+0.09 on every
seed", "37 % of the way to chance", "54 networks"). Every such number must appear in that notebook's
outputs at the same rounding (an output of 0.8893 supports "0.889" and "0.89", not "0.890" or "0.88"), or
be a setting the code itself writes (`N_PER_CLASS = 10`), or come from the literature — marked by a
citation in the same sentence ("Ganin et al. 2016 report 0.52 → 0.77"). Anything else is a number the
reader cannot check, and usually one that has drifted from what the code now measures.

What counts as a number to check: decimals (0.556, +0.09, −0.146, 1.5×), percentages (37 %), and integers
of two or more digits (54, 2,970). Not checked: single digits (too generic to mean a measurement), years,
numbers inside LaTeX, code spans, links and HTML, list and heading numbering, and numbers that are part of
a name (MobileNetV2, L2-SP, 8×8 images in a name like `28×28`), that follow a word that makes them a
reference (lesson 05, exercise 3, step 2, layer 4, stage 1, epoch 5, seed 2, block 11, Table 1), and
confidence levels ("95 % interval").
"""
import json, re
from dataclasses import dataclass
from pathlib import Path

CITATION = re.compile(
    r"\b[A-Z][A-Za-z'’-]+(?:\s+et\s+al\.?|\s*(?:&|and)\s*[A-Z][A-Za-z'’-]+)?,?\s*\(?(?:19|20)\d\d[a-z]?\)?")
REFERENCE_WORDS = ('lesson', 'lessons', 'exercise', 'exercises', 'ex', 'step', 'steps', 'stage', 'stages', 'layer',
                   'layers', 'block', 'blocks', 'epoch', 'epochs', 'seed', 'seeds', 'table', 'figure', 'section',
                   'cell', 'cells', 'part', 'chapter', 'issue', 'version', 'python', 'top', 'rank', 'row', 'column',
                   'features', 'round', 'rounds', 'stop', 'phase', 'arm', 'question', 'no', 'number', 'nbs')
CONFIDENCE_WORDS = ('interval', 'intervals', 'ci', 'cis', 'confidence')
NUMBER = re.compile(r"(?<![\w.\-/])([+−-]?)((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(\s?%|×)?(?![\w]|\.\d)")
OUT_NUMBER = re.compile(r"([+−-]?)((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(\s?%)?")
MINUS = str.maketrans({'−': '-', '–': '-', '\u2009': ' ', '\u202f': ' ', '\xa0': ' '})


@dataclass(frozen=True)
class Claim:
    cell: int          # markdown cell index
    text: str          # the number as written
    sentence: str      # the sentence it sits in
    bench: bool = False  # the sentence cites the benchmark (bench/): the number must be in its recorded results (bench/*.md, *.json)


def _strip_markup(md:str) -> str:
    "Markdown without the places numbers are not claims: math, code, links, HTML, numbering."
    md = re.sub(r"```.*?```", " ", md, flags=re.S)
    md = re.sub(r"\$\$.*?\$\$", " ", md, flags=re.S)
    md = re.sub(r"(?<!\\)\$[^$\n]+\$", " ", md)
    md = re.sub(r"`[^`\n]*bench/[^`\n]*`", " BENCHREF ", md)          # a pointer to the recorded benchmark
    md = re.sub(r"`[^`\n]*`", " ", md)
    md = re.sub(r"\]\([^)]*\)", "]", md)                    # link targets
    md = re.sub(r"https?://\S+", " ", md)
    md = re.sub(r"<[^>]+>", " ", md)
    md = re.sub(r"^\s*(?:#+\s*)?\d+[.)]\s", " ", md, flags=re.M)   # list / heading numbering
    md = re.sub(r"^\s*#+\s*\d+(?:\.\d+)*\s", " ", md, flags=re.M)
    return md.translate(MINUS)


def _sentences(text:str) -> list[str]:
    "Rough sentences: a table row is one; elsewhere split at . ! ? ; before a capital, or at a blank line."
    out = []
    for block in re.split(r"((?:^\s*\|.*\n?)+)", text, flags=re.M):
        if block.lstrip().startswith('|'): out += [r for r in block.splitlines() if r.strip() and not re.fullmatch(r"[\s|:-]+", r)]
        else: out += re.split(r"(?<=[.!?;])\s+(?=[A-Z(*_])|\n\s*\n", block)
    return [s for s in out if s.strip()]


def prose_claims(nb:dict) -> list[Claim]:
    "Every number in the markdown of `nb` that states something measured (see the module docstring)."
    out = []
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'markdown': continue
        for sent in _sentences(_strip_markup(''.join(c['source']))):
            if CITATION.search(sent): continue   # from the literature
            for m in NUMBER.finditer(sent):
                sign, num, unit = m.groups()
                digits = num.replace(',', '')
                if '.' not in digits and not unit:
                    if len(digits) < 2 or re.fullmatch(r"(?:19|20)\d\d", digits): continue
                before = sent[:m.start()].rstrip().lower()
                word = re.findall(r"[a-z]+$", before)
                if word and word[0] in REFERENCE_WORDS: continue
                if re.search(r"[×x]\s*$", before) or sent[m.end():m.end()+1] in ('×',) and unit is None: continue
                after = re.match(r"\s*([A-Za-z]+)", sent[m.end():])
                if unit and unit.strip() == '%' and after and after[1].lower() in CONFIDENCE_WORDS: continue   # a confidence level
                out.append(Claim(i, (sign or '') + num + (unit or '').strip(), sent.strip(), 'BENCHREF' in sent))
    return out


def _values(text:str):
    "(sign, value, decimals, is_percent) of every number in a piece of output text."
    for m in OUT_NUMBER.finditer(text.translate(MINUS)):
        sign, num, pct = m.groups()
        digits = num.replace(',', '')
        dec = len(digits.split('.')[1]) if '.' in digits else 0
        yield sign, float(digits), dec, bool(pct)


def output_text(nb:dict) -> str:
    "All text/plain and stream output of a notebook, one string."
    parts = []
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        for o in c.get('outputs', []):
            t = o.get('text') or o.get('data', {}).get('text/plain', '') or ''
            parts.append(''.join(t) if isinstance(t, list) else t)
            if 'text/markdown' in o.get('data', {}): parts.append(''.join(o['data']['text/markdown']))
            if 'text/html' in o.get('data', {}): parts.append(re.sub(r"<[^>]+>", " ", ''.join(o['data']['text/html'])))
    return '\n'.join(parts)


def code_text(nb:dict) -> str:
    return '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code')


def _supported(claim:Claim, outs:list, code_numbers:set) -> bool:
    "Whether an output number rounds to the claim (sign respected when the claim carries one), or the code sets it."
    t = claim.text
    pct, times = t.endswith('%'), t.endswith('×')
    core = t.rstrip('%×').strip()
    sign = core[0] if core[0] in '+-' else ''
    digits = core.lstrip('+-').replace(',', '')
    dec = len(digits.split('.')[1]) if '.' in digits else 0
    want = float(digits)
    if digits in code_numbers or (sign + digits) in code_numbers: return True
    for osign, val, odec, opct in outs:
        cands = [(val, odec)]
        if pct and not opct and odec >= dec + 2: cands.append((val*100, odec - 2))   # 0.3684 supports 37%
        for v, d in cands:
            if d < dec: continue
            if round(v + 1e-12, dec) != round(want, dec) and abs(round(v, dec) - want) > 10**-(dec+3): continue
            if sign == '-' and osign != '-': continue
            if sign == '+' and osign == '-': continue
            return True
    return False


def unsupported(nb_path:Path) -> list[Claim]:
    "The prose numbers of a notebook that neither its outputs nor its code support."
    nb = json.loads(Path(nb_path).read_text())
    outs = list(_values(output_text(nb)))
    bench = Path(__file__).resolve().parent.parent/'bench'
    bench_outs = list(_values('\n'.join(p.read_text() for p in sorted(bench.glob('*.md')) + sorted(bench.glob('*.json')))))
    code_numbers = {m.group(1) + m.group(2).replace(',', '') if m.group(1) == '-' else m.group(2).replace(',', '')
                    for m in re.finditer(r"(?<![\w.])(-?)(\d[\d,]*(?:\.\d+)?)", code_text(nb))}
    code_numbers |= {s.lstrip('-') for s in code_numbers}
    return [c for c in prose_claims(nb) if not _supported(c, bench_outs if c.bench else outs, code_numbers)]


if __name__ == '__main__':
    import sys
    paths = [Path(p) for p in sys.argv[1:]] or sorted((Path(__file__).resolve().parent.parent/'nbs').rglob('*.ipynb'))
    total = 0
    for p in paths:
        bad = unsupported(p)
        total += len(bad)
        for c in bad: print(f"{p.name} cell {c.cell}: {c.text!r} in: {c.sentence[:160]!r}")
    print(f"{total} unsupported number(s)")

"""tltutor's benchmarks: its training loop against a hand-written PyTorch loop and Hugging Face `Trainer`,
cached features against re-forwarding a frozen backbone, and the speed knobs behind the defaults.

    python bench/run.py --quick        # 2 CPU cores, a few minutes; what bench/results.md holds
    python bench/run.py                # full scale (a GPU: 224 px, longer runs, bf16)

Writes bench/results.json (every number) and bench/results.md (the tables, the command, the machine).
Timings are wall-clock medians over repeats, warm-up excluded, with the contenders interleaved (their order
rotates every repeat) so that a change in machine load hits all of them alike.
"""
import argparse, contextlib, datetime, io, json, os, platform, statistics, subprocess, sys, tempfile, time, warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TORCHINDUCTOR_FORCE_DISABLE_CACHES', '1')   # time torch.compile's first compile, not a cache hit

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from tltutor.core import get_device, set_seed
from tltutor.data import load_mnist, load_rotten_tomatoes, tensor_loader
from tltutor.finetune import extract_features, fit_head
from tltutor.models import freeze_bottom, load_text_model, load_tokenizer, mobilenet_v2, quiet_transformers
from tltutor.train import adamw_impl, fit


# ---------------------------------------------------------------- the same data and model for every contender
class DictData(Dataset):
    "Dict items {name: tensor[i]}: what HF models, `Trainer` and `fit` (dict batches) all take."
    def __init__(self, **cols): self.cols, self.n = cols, len(next(iter(cols.values())))
    def __len__(self): return self.n
    def __getitem__(self, i): return {k: v[i] for k, v in self.cols.items()}


class ImageClassifier(nn.Module):
    "A vision model with the HF calling convention (keyword inputs, `.logits`, `.loss` when given labels)."
    def __init__(self, net): super().__init__(); self.net = net
    def forward(self, pixel_values, labels=None):
        from transformers.modeling_outputs import ImageClassifierOutput
        logits = self.net(pixel_values)
        return ImageClassifierOutput(loss=None if labels is None else F.cross_entropy(logits.float(), labels), logits=logits)


def image_task(q):
    x, y = load_mnist()
    n = q['img_steps']*q['img_bs']
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(y), generator=g)[:n]
    model = ImageClassifier(mobilenet_v2(num_classes=10, input_size=q['img_px']))
    return dict(name=f"MobileNetV2, MNIST at {q['img_px']} px", model=model, data=DictData(pixel_values=x[idx], labels=y[idx]),
                bs=q['img_bs'], lr=1e-3)


def text_task(q):
    ds = load_rotten_tomatoes()
    n = q['txt_steps']*q['txt_bs']
    tok = load_tokenizer()
    enc = tok(ds['text'][:n], padding='max_length', truncation=True, max_length=q['txt_len'], return_tensors='pt')
    model = load_text_model(num_labels=2)
    return dict(name=f"MiniLM, Rotten Tomatoes, {q['txt_len']} tokens", model=model,
                data=DictData(**dict(enc), labels=torch.tensor(ds['label'][:n])), bs=q['txt_bs'], lr=5e-5)


# ---------------------------------------------------------------- the three training loops, same recipe
def cosine(steps):
    "fit's schedule: linear warm-up over 5% of the steps, then cosine decay."
    import math
    warm = max(1, steps//20)
    return lambda s: (s+1)/warm if s < warm else 0.5*(1 + math.cos(math.pi*(s-warm)/max(1, steps-warm)))


def loader(task, seed=0, **kw):
    return DataLoader(task['data'], batch_size=task['bs'], shuffle=True, generator=torch.Generator().manual_seed(seed), **kw)


def bare_loop(task, dev, amp=False, opt_kw=None, loader_kw=None, model=None, epochs=1):
    "The loop a learner writes by hand: AdamW, warm-up + cosine, clipping at 1.0, no evaluation, no bookkeeping."
    model = (task['model'] if model is None else model).to(dev).train()
    dl = loader(task, **(loader_kw or {}))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=task['lr'], weight_decay=0.01, **(opt_kw or {}))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(epochs*len(dl)))
    for _ in range(epochs):
        for batch in dl:
            batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
            y = batch.pop('labels')
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(amp)):
                logits = model(**batch).logits
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step()
    return float(loss.detach())


def tltutor_loop(task, dev, opt_kw=None):
    model = task['model']
    opt = None
    if opt_kw is not None:
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=task['lr'], weight_decay=0.01, **opt_kw)
    h = fit(model, loader(task), epochs=1, lr=task['lr'], opt=opt, device=dev, progress=False)
    return h['train_loss'][-1]


def trainer_loop(task, dev, out_dir):
    "HF Trainer with the same recipe; everything else left at Trainer's defaults."
    from transformers import Trainer, TrainingArguments
    steps = len(loader(task))
    args = TrainingArguments(
        output_dir=out_dir, num_train_epochs=1, per_device_train_batch_size=task['bs'], learning_rate=task['lr'],
        weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type='cosine', warmup_steps=max(1, steps//20), seed=0,
        use_cpu=dev.type == 'cpu', bf16=dev.type == 'cuda', report_to=[], disable_tqdm=True,
        save_strategy='no', eval_strategy='no', logging_strategy='no')
    trainer = Trainer(model=task['model'], args=args, train_dataset=task['data'])
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()): out = trainer.train()   # it prints its metrics
    return out.training_loss, (time.perf_counter() - t0, time.process_time() - c0), args.optim


def interleaved(contenders:dict, reset, repeats:int) -> dict:
    """Median seconds of each contender over `repeats` rounds after one warm-up round; order rotates each round.
    Both clocks are kept: wall time, and CPU time of this process (steadier on a shared machine, when
    torch uses one thread and no loader workers). A contender is timed from outside, unless it returns
    ('seconds', wall, cpu): the times it measured itself."""
    names, times = list(contenders), {k: ([], []) for k in contenders}
    for r in range(repeats + 1):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            reset()
            t0, c0 = time.perf_counter(), time.process_time()
            t = contenders[k]()
            wall, cpu = t[1:] if isinstance(t, tuple) and t[0] == 'seconds' else (time.perf_counter() - t0, time.process_time() - c0)
            if r: times[k][0].append(wall); times[k][1].append(cpu)
    key = 'cpu' if CLOCK == 'cpu' else 'wall'
    return {k: {'median_s': statistics.median(v[1] if key == 'cpu' else v[0]), 'clock': key,
                'wall_median_s': statistics.median(v[0]), 'cpu_median_s': statistics.median(v[1]),
                'wall_runs_s': [round(x, 4) for x in v[0]], 'cpu_runs_s': [round(x, 4) for x in v[1]]} for k, v in times.items()}


CLOCK = 'wall'


def compare_loops(task, dev, repeats, tmp):
    "tltutor vs bare vs Trainer on one task, each with its default optimizer; also the bare loop with fit's (fused AdamW) and fit with foreach."
    init = {k: v.clone() for k, v in task['model'].state_dict().items()}
    reset = lambda: (task['model'].load_state_dict(init), set_seed(0))
    hf_optim = []
    def hf():
        loss, dt, optim = trainer_loop(task, dev, tmp); hf_optim.append(str(optim)); return ('seconds', *dt)
    contenders = {
        'bare': lambda: bare_loop(task, dev, amp=dev.type == 'cuda'),
        'bare_fused': lambda: bare_loop(task, dev, amp=dev.type == 'cuda', opt_kw={'fused': True}),
        'tltutor': lambda: tltutor_loop(task, dev),
        'tltutor_foreach': lambda: tltutor_loop(task, dev, opt_kw={'foreach': True}),
        'trainer': hf,
    }
    res = interleaved(contenders, reset, repeats)
    n = len(task['data'])
    for v in res.values(): v['samples_per_s'] = n/v['median_s']
    ratio = lambda a, b: res[a]['median_s']/res[b]['median_s']
    return {'task': task['name'], 'samples': n, 'batch_size': task['bs'], 'trainer_optim': hf_optim[-1], 'loops': res,
            'ratios': {'tltutor/bare_fused': ratio('tltutor', 'bare_fused'), 'tltutor/bare': ratio('tltutor', 'bare'),
                       'tltutor/trainer': ratio('tltutor', 'trainer'), 'tltutor_foreach/trainer': ratio('tltutor_foreach', 'trainer')}}


# ---------------------------------------------------------------- feature caching
def feature_caching(q, dev, repeats):
    "Epoch time of a linear head on cached MobileNetV2 features vs re-forwarding the frozen backbone every epoch."
    x, y = load_mnist()
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))[:q['cache_n']]
    x, y = x[idx], y[idx]
    set_seed(0)
    model = mobilenet_v2(num_classes=10, input_size=q['img_px'])
    freeze_bottom(model, -1)   # head only: the backbone is frozen either way
    dl = tensor_loader(x, y, bs=q['img_bs'], shuffle=True)
    t0 = time.perf_counter(); feats, fy = extract_features(model, tensor_loader(x, y, bs=256), device=dev)
    t_extract = time.perf_counter() - t0
    epochs = q['cache_epochs']
    def cached():
        t0, c0 = time.perf_counter(), time.process_time(); fit_head(feats, fy, epochs=epochs, bs=q['img_bs'], device=dev)
        return ('seconds', (time.perf_counter()-t0)/epochs, (time.process_time()-c0)/epochs)
    def reforward():
        t0, c0 = time.perf_counter(), time.process_time(); fit(model, dl, epochs=1, device=dev, progress=False)
        return ('seconds', time.perf_counter()-t0, time.process_time()-c0)
    res = interleaved({'cached': cached, 'reforward': reforward}, lambda: set_seed(0), repeats)
    return {'images': len(y), 'px': q['img_px'], 'feature_dim': feats.shape[1], 'extract_s': t_extract,
            'cached_epoch_s': res['cached']['median_s'], 'reforward_epoch_s': res['reforward']['median_s'],
            'speedup': res['reforward']['median_s']/res['cached']['median_s']}


# ---------------------------------------------------------------- the knobs behind the defaults
def speed_knobs(q, dev, repeats, on_partial=None):
    "The bare loop on MobileNetV2 for 2 short epochs (so persistent workers matter) under each setting alone."
    task = image_task({**q, 'img_steps': q['knob_steps']})
    base = task['model']
    init = {k: v.clone() for k, v in base.state_dict().items()}
    threads = torch.get_num_threads()
    other = 2 if threads == 1 else 1
    def run(**kw):
        def go():
            model, loader_kw, amp = base, kw.get('loader', {}), kw.get('amp', dev.type == 'cuda')
            if kw.get('channels_last'): model = base.to(memory_format=torch.channels_last)
            if kw.get('threads'): torch.set_num_threads(kw['threads'])
            try: bare_loop(task, dev, amp=amp, model=model, loader_kw=loader_kw, epochs=2)
            finally:
                torch.set_num_threads(threads)
                if kw.get('channels_last'): base.to(memory_format=torch.contiguous_format)
        return go
    knobs = {
        'baseline': run(),
        'num_workers=2': run(loader={'num_workers': 2}),
        'num_workers=2, persistent': run(loader={'num_workers': 2, 'persistent_workers': True}),
        'pin_memory': run(loader={'pin_memory': True}),
        'channels_last': run(channels_last=True),
        f'threads={other} (instead of {threads})': run(threads=other),
        'AMP bf16' if dev.type != 'cuda' else 'AMP off (fp32)': run(amp=dev.type != 'cuda'),
    }
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # pin_memory without an accelerator warns
        res = interleaved(knobs, lambda: (base.load_state_dict(init), set_seed(0)), repeats)
    for v in res.values(): v['median_s'] = v['wall_median_s']   # wall clock: loader workers are other processes
    n = 2*len(task['data'])
    b_best = min(res['baseline']['wall_runs_s'])
    out = {k: {'median_s': v['median_s'], 'samples_per_s': n/v['median_s'], 'runs_s': v['wall_runs_s'],
               'vs_baseline': res['baseline']['median_s']/v['median_s'], 'vs_baseline_best': b_best/min(v['wall_runs_s'])}
           for k, v in res.items()}
    if on_partial: on_partial(out)
    # torch.compile: the first call pays the compilation; then the steady state
    base.load_state_dict(init); set_seed(0)
    compiled = torch.compile(base)
    t0 = time.perf_counter(); bare_loop(task, dev, amp=dev.type == 'cuda', model=compiled, epochs=1); first = time.perf_counter() - t0
    steady = []
    for _ in range(max(1, repeats - 1)):
        t0 = time.perf_counter(); bare_loop(task, dev, amp=dev.type == 'cuda', model=compiled, epochs=2); steady.append(time.perf_counter() - t0)
    s = statistics.median(steady)
    out['torch.compile'] = {'median_s': s, 'samples_per_s': n/s, 'vs_baseline': res['baseline']['median_s']/s,
                            'compile_s': first - s/2, 'runs_s': [round(x, 4) for x in steady], 'vs_baseline_best': b_best/min(steady)}
    out['channels_last, ResNet-18'] = channels_last_resnet(q, dev, repeats)
    return out


def channels_last_resnet(q, dev, repeats):
    "channels_last on ResNet-18 (ordinary 3×3 convolutions) against its own contiguous baseline: does MobileNetV2's gain carry over?"
    import torchvision
    from tltutor.models import ImageNetInput
    set_seed(0)
    task = image_task({**q, 'img_steps': q['knob_steps']})
    base = task['model'] = ImageClassifier(nn.Sequential(ImageNetInput(q['img_px']), torchvision.models.resnet18(num_classes=10)))
    init = {k: v.clone() for k, v in base.state_dict().items()}
    def run(cl):
        def go():
            if cl: base.to(memory_format=torch.channels_last)
            try: bare_loop(task, dev, amp=dev.type == 'cuda', epochs=2)
            finally: base.to(memory_format=torch.contiguous_format)
        return go
    res = interleaved({'contiguous': run(False), 'channels_last': run(True)}, lambda: (base.load_state_dict(init), set_seed(0)), repeats)
    n, s, b = 2*len(task['data']), res['channels_last']['wall_median_s'], res['contiguous']['wall_median_s']
    return {'median_s': s, 'samples_per_s': n/s, 'vs_baseline': b/s, 'baseline_samples_per_s': n/b,
            'runs_s': res['channels_last']['wall_runs_s'], 'baseline_runs_s': res['contiguous']['wall_runs_s'],
            'vs_baseline_best': min(res['contiguous']['wall_runs_s'])/min(res['channels_last']['wall_runs_s'])}


# ---------------------------------------------------------------- the report
def machine() -> dict:
    cpu = next((l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines()
                if l.startswith('model name')), platform.processor()) if Path('/proc/cpuinfo').exists() else platform.processor()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try: load = os.getloadavg()
    except OSError: load = None
    import transformers
    return {'cpu': cpu, 'cores': os.cpu_count(), 'torch_threads': torch.get_num_threads(), 'gpu': gpu,
            'torch': torch.__version__, 'transformers': transformers.__version__, 'python': platform.python_version(),
            'load_average_at_start': load}


def markdown(r) -> str:
    m, L = r['machine'], []
    L += ['# tltutor benchmarks', '',
          f"Command: `{r['command']}` · date: {r['date']} · scale: {r['scale']} · device: {r['device']}",
          '', f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), GPU: {m['gpu'] or 'none'}; "
          f"torch {m['torch']}, transformers {m['transformers']}, Python {m['python']}.",
          f"Load average at start: {m['load_average_at_start']}. {r['note']}", '',
          f"Median over repeats, warm-up excluded, contenders interleaved; loops and caching timed by the {r.get('clock', 'wall')} clock"
          + (" (CPU time of the benchmark process, 1 torch thread: steadier than wall time on a shared machine)" if r.get('clock') == 'cpu' else '')
          + ', the speed knobs by wall time. Ratios are time per sample '
          '(= samples/s of the other ÷ samples/s of tltutor); below 1 means tltutor is faster. '
          'On a virtual machine whose cores are shared, a round can run slow for every contender (see the runs columns); '
          'the best-run columns (fastest run of each, as `timeit` reports) are the least disturbed by that.', '',
          '## Training loops', '']
    for c in r['loops']:
        clock = 'cpu' if r.get('clock') == 'cpu' else 'wall'
        best = {k: min(v[f'{clock}_runs_s']) for k, v in c['loops'].items()}
        L += [f"### {c['task']} — {c['samples']} samples, batch {c['batch_size']}, 1 epoch", '',
              '| loop | optimizer | samples/s (median) | samples/s (best run) | median s | runs s |', '|---|---|---:|---:|---:|---|']
        opt = {'bare': 'AdamW (torch default: for-loop)', 'tltutor': 'AdamW (fit default: ' + ', '.join(adamw_impl(r['device'])) + ')',
               'trainer': f"Trainer default (`{c['trainer_optim']}`)", 'bare_fused': 'AdamW fused',
               'tltutor_foreach': 'AdamW foreach (opt=)'}
        for k, v in c['loops'].items():
            L.append(f"| {k} | {opt[k]} | {v['samples_per_s']:.1f} | {c['samples']/best[k]:.1f} | {v['median_s']:.3f} | "
                     + ', '.join(f'{x:.2f}' for x in v[f'{clock}_runs_s']) + ' |')
        L += ['', '| ratio (time per sample) | median | best run |', '|---|---:|---:|']
        L += [f"| {k} | {v:.3f} | {best[k.split('/')[0]]/best[k.split('/')[1]]:.3f} |" for k, v in c['ratios'].items()] + ['']
    f = r['feature_caching']
    L += ['## Feature caching', '',
          f"{f['images']} MNIST images at {f['px']} px through frozen MobileNetV2 ({f['feature_dim']}-d features), linear head.", '',
          '| | seconds |', '|---|---:|',
          f"| extract features once | {f['extract_s']:.3f} |",
          f"| one epoch re-forwarding the frozen backbone | {f['reforward_epoch_s']:.3f} |",
          f"| one epoch on cached features | {f['cached_epoch_s']:.4f} |",
          f"| **speed-up per epoch** | **{f['speedup']:.1f}×** |", '',
          '## Speed knobs (bare loop, MobileNetV2, 2 epochs; each knob alone)', '',
          '| setting | samples/s | × baseline (medians) | × baseline (best runs) | runs s | note |', '|---|---:|---:|---:|---|---|']
    if not r.get('knobs'): L.append('| (not measured in this run: it was stopped before this section finished) | | | | | |')
    for k, v in r.get('knobs', {}).items():
        note = (f"compilation ≈ {v['compile_s']:.1f} s" if 'compile_s' in v else
                f"× its own contiguous baseline ({v['baseline_samples_per_s']:.1f} samples/s)" if 'baseline_samples_per_s' in v else '')
        runs = ', '.join(f'{x:.2f}' for x in v.get('runs_s', []))
        best = f"{v['vs_baseline_best']:.2f}" if 'vs_baseline_best' in v else ''
        L.append(f"| {k} | {v['samples_per_s']:.1f} | {v['vs_baseline']:.2f} | {best} | {runs} | {note} |")
    if 'total_s' in r: L += ['', f"Total run time: {r['total_s']:.0f} s."]
    return '\n'.join(L) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='2 CPU cores, a few minutes (the committed results)')
    ap.add_argument('--repeats', type=int, default=None, help='timed rounds after the warm-up (default 5)')
    ap.add_argument('--device', default=None, help='cpu, cuda, ... (default: get_device())')
    ap.add_argument('--out', default=str(REPO/'bench'), help='folder for results.json and results.md')
    ap.add_argument('--threads', type=int, default=None,
                    help="torch threads (default: torch's, one per core); 1 on a machine shared with other jobs")
    ap.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                    help="what the loop and caching medians use: wall time, or this process's CPU time (shared machine, --threads 1)")
    ap.add_argument('--note', default='', help='a remark for results.md, e.g. that the machine was shared')
    ap.add_argument('--report-only', action='store_true', help='only rewrite results.md from OUT/results.json')
    a = ap.parse_args()
    if a.report_only:
        r = json.loads((Path(a.out)/'results.json').read_text())
        (Path(a.out)/'results.md').write_text(markdown(r)); return
    dev = get_device(a.device or ('cpu' if a.quick else None))
    q = (dict(img_px=32, img_bs=32, img_steps=8, txt_bs=16, txt_len=32, txt_steps=8, cache_n=512, cache_epochs=5, knob_steps=8) if a.quick else
         dict(img_px=224, img_bs=64, img_steps=60, txt_bs=32, txt_len=128, txt_steps=60, cache_n=4096, cache_epochs=10, knob_steps=30))
    repeats = a.repeats or 5
    if a.threads: torch.set_num_threads(a.threads)
    global CLOCK; CLOCK = a.clock
    os.environ.setdefault('TLTUTOR_SCALE', 'quick' if a.quick else 'full')
    t_start = time.perf_counter()
    r = {'clock': a.clock, 'command': 'python bench/run.py' + (' --quick' if a.quick else '') + (f' --repeats {a.repeats}' if a.repeats else '')
                   + (f' --threads {a.threads}' if a.threads else '') + (f' --clock {a.clock}' if a.clock != 'wall' else '') + (f' --note "{a.note}"' if a.note else ''),
         'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
         'scale': 'quick' if a.quick else 'full', 'device': str(dev), 'machine': machine(), 'settings': q, 'repeats': repeats,
         'note': a.note}
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    save = lambda: (out/'results.json').write_text(json.dumps(r, indent=1) + '\n')   # after every section
    with quiet_transformers(), tempfile.TemporaryDirectory() as tmp:
        r['loops'] = []
        for make in (image_task, text_task):
            set_seed(0); task = make(q)
            r['loops'].append(compare_loops(task, dev, repeats, tmp)); print(json.dumps(r['loops'][-1]['ratios']), flush=True); save()
        r['feature_caching'] = feature_caching(q, dev, repeats); print(r['feature_caching'], flush=True); save()
        r['knobs'] = speed_knobs(q, dev, repeats, on_partial=lambda k: (r.update(knobs=k), save()))
    r['total_s'] = time.perf_counter() - t_start
    save()
    (out/'results.md').write_text(markdown(r))
    print(markdown(r)); print(f"total {r['total_s']:.0f} s")


if __name__ == '__main__': main()

"""The same `fit` trains data-parallel: 2 CPU processes under torchrun (gloo, loopback) end with identical weights."""
import os, socket, subprocess, sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def run_ddp(out, nproc=2, timeout=120):
    env = {**os.environ, 'GLOO_SOCKET_IFNAME': 'lo', 'OMP_NUM_THREADS': '1', 'TLTUTOR_DEVICE': 'cpu',
           'PYTHONPATH': f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', str(nproc),
           '--master_addr', '127.0.0.1', '--master_port', str(free_port()),
           str(REPO/'bench'/'ddp_fit.py'), '--out', str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_two_ranks_agree(tmp_path):
    r = run_ddp(tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ranks = [torch.load(tmp_path/f'rank{i}.pt', weights_only=True) for i in range(2)]
    assert all(s['world'] == 2 for s in ranks)
    a, b = ranks[0]['state'], ranks[1]['state']
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), f"ranks disagree on {k}"          # weights and BatchNorm buffers
    assert not torch.equal(ranks[0]['init']['0.weight'], ranks[1]['init']['0.weight'])   # seeded differently...
    assert not torch.equal(a['0.weight'], ranks[0]['init']['0.weight'])              # ...and training moved them
    assert ranks[0]['records'][-1]['valid_accuracy'] > 0.8                             # digits: it really learned
    for ra, rb in zip(ranks[0]['records'], ranks[1]['records']):                       # epoch totals over both shards
        assert ra['train_loss'] == rb['train_loss'] and ra['valid_accuracy'] == rb['valid_accuracy']
    assert '2 processes' in r.stdout and r.stdout.count('History(') == 1            # only rank 0 prints


def test_distributed_without_group_says_how():
    from torch import nn
    from tltutor.data import tensor_loader
    from tltutor.train import fit
    x, y = torch.randn(8, 2), torch.arange(8) % 2
    with pytest.raises(ValueError, match='torchrun'): fit(nn.Linear(2, 2), tensor_loader(x, y), distributed=True)

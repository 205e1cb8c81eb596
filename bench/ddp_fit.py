"""Data-parallel training with tltutor's ordinary `fit`, launched by torchrun.

    torchrun --nproc_per_node 2 bench/ddp_fit.py --out /tmp/ddp            # CPU: 2 processes, gloo
    torchrun --nproc_per_node 8 bench/ddp_fit.py --out /tmp/ddp            # one node, 8 GPUs: nccl, cuda:LOCAL_RANK

Every process runs this same script. `init_distributed()` joins the group torchrun describes; `fit` then
wraps the model in DistributedDataParallel, gives each process its own shard of the data
(DistributedSampler) and averages gradients, so all ranks end with the same weights. Each rank writes
its final state dict and history to OUT/rank{R}.pt so a test can compare them.
"""
import argparse, os
from pathlib import Path

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

from tltutor.core import set_seed
from tltutor.data import tensor_loader
from tltutor.train import dist_info, fit, init_distributed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', required=True, help='folder for rank{R}.pt (final weights, initial weights, history)')
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--bs', type=int, default=32, help='batch size per process (global batch: bs × processes)')
    a = ap.parse_args()
    torch.set_num_threads(1)   # two processes on two cores
    world, rank = init_distributed()
    set_seed(rank)   # different seeds on purpose: DDP starts every rank from rank 0's weights
    d = load_digits()
    x, y = torch.tensor(d.data, dtype=torch.float32)/16, torch.tensor(d.target)
    model = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    h = fit(model, tensor_loader(x[:1200], y[:1200], bs=a.bs, shuffle=True), tensor_loader(x[1200:], y[1200:], bs=256),
            epochs=a.epochs, lr=1e-2, progress=False)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    torch.save({'state': model.state_dict(), 'init': init, 'records': h.records, 'world': dist_info()[0]},
               Path(a.out)/f'rank{rank}.pt')
    if rank == 0: print(f"{world} processes: {h}")
    torch.distributed.barrier()   # every rank done before any tears down: gloo aborts a rank whose peer left first
    torch.distributed.destroy_process_group()


if __name__ == '__main__': main()

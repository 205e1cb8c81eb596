import pytest
import torch
import torch.nn as nn

from tltutor.core import set_seed
from tltutor.data import tensor_loader
from tltutor.train import History, classification_metrics, cosine_schedule, evaluate, fit, split_batch


def blobs(n=200, seed=0):
    "Two Gaussian blobs in 2-d: a task a linear model learns in a few epochs."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) + 3*y[:, None].float()
    return x, y


def test_fit_learns_and_restores_best():
    set_seed(0)
    x, y = blobs()
    model = nn.Linear(2, 2)
    h = fit(model, tensor_loader(x[:150], y[:150], bs=16, shuffle=True), tensor_loader(x[150:], y[150:], bs=50),
            epochs=5, lr=0.1, progress=False)
    assert isinstance(h, History) and len(h) == 5
    assert h.best['valid_accuracy'] > 0.9
    assert evaluate(model, tensor_loader(x[150:], y[150:]))['accuracy'] == h.best['valid_accuracy']


def test_fit_is_deterministic():
    x, y = blobs()
    out = []
    for _ in range(2):
        set_seed(1); m = nn.Linear(2, 2)
        fit(m, tensor_loader(x, y, bs=16, shuffle=True), epochs=2, lr=0.05, progress=False)
        out.append(m.weight.detach().clone())
    assert torch.equal(*out)


def test_cosine_schedule_is_fits_own_and_spans_calls():
    "A scheduler passed as sched= is stepped every step and never reset; fit's own gives the same rates in one call."
    x, y = blobs(80)
    dl = tensor_loader(x, y, bs=10)                       # 8 steps an epoch
    def rates(sched_for):
        set_seed(0); m = nn.Linear(2, 2); o = torch.optim.AdamW(m.parameters(), lr=0.1)
        s, out = sched_for(o), []
        for _ in range(2):
            fit(m, dl, epochs=1, opt=o, sched=s, progress=False); out.append(o.param_groups[0]['lr'])
        return out, m.weight.detach().clone()
    (r1, w1), (r2, _) = rates(lambda o: cosine_schedule(o, 16)), rates(lambda o: 'cosine')
    assert 0 < r1[0] < 0.1 and r1[1] == 0                 # one schedule: half-way down after call 1, 0 after call 2
    assert r2 == [0, 0]                                   # 'cosine': each call decays to 0 on its own
    set_seed(0); m = nn.Linear(2, 2); o = torch.optim.AdamW(m.parameters(), lr=0.1)
    fit(m, tensor_loader(x, y, bs=10), epochs=2, opt=o, sched=cosine_schedule(o, 16), progress=False)
    assert torch.equal(m.weight, w1)                      # two calls over one schedule = one call of two epochs
    set_seed(0); m2 = nn.Linear(2, 2); o2 = torch.optim.AdamW(m2.parameters(), lr=0.1)
    fit(m2, dl, epochs=2, opt=o2, sched='cosine', progress=False)
    assert torch.equal(m2.weight, w1)                     # fit's own 'cosine' over one call is cosine_schedule(opt, steps)
    with pytest.raises(ValueError, match='another optimiser'):
        fit(m, dl, opt=o, sched=cosine_schedule(torch.optim.SGD(m.parameters(), lr=0.1), 4), progress=False)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match='at least 1'): cosine_schedule(o, bad)
    with pytest.raises(ValueError, match='warm-up share'): cosine_schedule(o, 10, warmup=1.0)


def test_early_stopping():
    set_seed(0)
    x, y = blobs()
    h = fit(nn.Linear(2, 2), tensor_loader(x, y, bs=16), tensor_loader(x, y), epochs=50, lr=0.1, patience=2, progress=False)
    assert h.stopped_early and len(h) < 50


def test_extra_loss_is_added():
    x, y = blobs()
    seen = []
    def extra(model, xb, logits, yb):
        seen.append(xb.shape[0]); return model.weight.pow(2).sum()
    fit(nn.Linear(2, 2), tensor_loader(x, y, bs=50), epochs=1, lr=0.01, extra_loss=extra, progress=False)
    assert seen == [50]*4


def test_hf_style_batches():
    inputs, y = split_batch({'input_ids': torch.ones(2, 3, dtype=torch.long), 'labels': torch.tensor([0, 1])}, 'cpu')
    assert set(inputs) == {'input_ids'} and y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="'labels'"): split_batch({'input_ids': torch.ones(1)}, 'cpu')
    with pytest.raises(TypeError, match='batch must be'): split_batch(torch.ones(3), 'cpu')


def test_bad_inputs_name_the_fix():
    x, y = blobs()
    with pytest.raises(ValueError, match='replace_head'): fit(nn.Linear(2, 1), tensor_loader(x, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match='at least 1 epoch'): fit(nn.Linear(2, 2), tensor_loader(x, y), epochs=0)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameters'): fit(frozen, tensor_loader(x, y), epochs=1)
    with pytest.raises(FloatingPointError, match='lower the learning rate'):
        xn = x.clone(); xn[5] = float('nan')   # one corrupt input poisons the loss
        fit(nn.Linear(2, 2), tensor_loader(xn, y), epochs=1, lr=1.0, clip=None, progress=False)
    with pytest.raises(ValueError, match='amp'): fit(nn.Linear(2, 2), tensor_loader(x, y), epochs=1, amp='int8')


def test_metrics():
    m = classification_metrics([0, 1, 1, 1], [0, 1, 1, 0])
    assert m['accuracy'] == 0.75 and abs(m['recall'] - (1 + 2/3)/2) < 1e-9
    with pytest.raises(ValueError, match='same length'): classification_metrics([0, 1], [0])


def test_keyboard_interrupt_keeps_best_weights():
    set_seed(0)
    x, y = blobs()
    model = nn.Linear(2, 2)
    calls = {'n': 0}
    def boom(m, xb, logits, yb):
        calls['n'] += 1
        if calls['n'] > 20: raise KeyboardInterrupt
        return logits.sum()*0
    h = fit(model, tensor_loader(x, y, bs=20), tensor_loader(x, y), epochs=10, lr=0.1, extra_loss=boom, progress=False)
    assert h.interrupted and len(h) == 2
    assert evaluate(model, tensor_loader(x, y))['accuracy'] == h.best['valid_accuracy']


def test_freeze_bn_stats_keeps_frozen_batchnorm_on_the_source_statistics():
    from tltutor.models import set_trainable
    set_seed(0)
    x, y = torch.randn(64, 4)*3 + 5, torch.arange(64) % 2
    def net():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
        set_trainable(m[:2], False)                      # a frozen bottom with its BatchNorm
        return m
    kept, moved = net(), net()
    stats0 = kept[1].running_mean.clone()
    fit(kept, tensor_loader(x, y, bs=16), epochs=1, freeze_bn_stats=True, progress=False)
    fit(moved, tensor_loader(x, y, bs=16), epochs=1, progress=False)
    assert torch.equal(kept[1].running_mean, stats0)               # frozen BN: the source's statistics
    assert not torch.equal(moved[1].running_mean, stats0)          # default: train mode re-estimates them
    assert not torch.equal(kept[4].running_mean, torch.zeros(8))   # a trainable BN still learns its statistics
    assert kept.training and kept[1].training is False


def test_opt_keeps_sched_and_clip_over_all_its_parameter_groups():
    "With opt= holding a second module (a DANN discriminator), sched shapes every group's rate and clip bounds all groups' gradients together."
    from unittest.mock import patch
    torch.manual_seed(0)
    m, disc = nn.Linear(4, 2), nn.Linear(2, 1)
    o = torch.optim.AdamW([{'params': m.parameters(), 'lr': 0.1}, {'params': disc.parameters(), 'lr': 0.01}])
    def extra(model, x, logits, y): return disc(logits).pow(2).mean()   # the discriminator's parameters get gradients
    dl = tensor_loader(torch.randn(40, 4), torch.randint(0, 2, (40,)), bs=10)
    clipped = []
    real = nn.utils.clip_grad_norm_
    def spy(params, max_norm, **kw):
        clipped.append({id(p) for p in params}); return real(params, max_norm, **kw)
    with patch.object(nn.utils, 'clip_grad_norm_', spy):
        fit(m, dl, epochs=2, opt=o, extra_loss=extra, progress=False)
    assert len(clipped) == 8 and all(clipped[0] == c for c in clipped)                  # every step
    assert {id(p) for p in disc.parameters()} <= clipped[0] and {id(p) for p in m.parameters()} <= clipped[0]
    assert [g['lr'] for g in o.param_groups] == [0., 0.]                                # cosine to 0 in both groups
    o2 = torch.optim.AdamW([{'params': m.parameters(), 'lr': 0.1}, {'params': disc.parameters(), 'lr': 0.01}])
    clipped.clear()
    with patch.object(nn.utils, 'clip_grad_norm_', spy):
        fit(m, dl, epochs=1, opt=o2, extra_loss=extra, sched=None, clip=None, progress=False)
    assert clipped == [] and [g['lr'] for g in o2.param_groups] == [0.1, 0.01]         # both off: rates untouched


def test_best_epoch_indexes_records_and_without_validation_uses_training_metric():
    "valid_dl=None: the best epoch is the best training accuracy, and the last weights are kept (nothing to restore from)."
    def run(restore_best):
        torch.manual_seed(3)
        x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
        m = nn.Linear(4, 2)
        h = fit(m, tensor_loader(x, y, bs=16), epochs=4, lr=0.5, sched=None, clip=None, restore_best=restore_best, progress=False)
        return m, h
    m, h = run(True)
    accs = [r['train_accuracy'] for r in h.records]
    assert h.best_epoch == accs.index(max(accs)) and h.best['epoch'] == h.best_epoch + 1
    assert h.best_epoch < len(h) - 1                     # the best epoch is not the last one here ...
    m_last, _ = run(False)
    assert torch.equal(m.weight, m_last.weight)          # ... yet the weights are the last epoch's: no restore without validation

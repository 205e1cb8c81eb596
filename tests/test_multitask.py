"""Tests of tltutor.multitask: the multi-task net and its joint label space, mixed-task loaders, weighted and
learned task losses, soft parameter sharing (and its link to L2-SP), and per-layer weight drift — on real digits."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tltutor.core import set_seed
from tltutor.data import load_digits, tensor_loader
from tltutor.models import small_cnn
from tltutor.regularize import l2_sp, weight_drift
from tltutor.train import evaluate, fit
from tltutor.multitask import MultiTaskNet, UncertaintyWeighting, multitask_loader, multitask_loss, soft_sharing_loss


@pytest.fixture(scope='module')
def digits():
    x, y = load_digits(size=16)
    return x, y


def make_net(seed=0, tasks=('digit', 'parity')):
    set_seed(seed, threads=1)
    cnn = small_cnn(size=16)
    heads = {'digit': cnn[-1], 'parity': nn.Linear(64, 2), 'big': nn.Linear(64, 2)}
    return MultiTaskNet(cnn[:-1], {t: heads[t] for t in tasks})


# --- MultiTaskNet -------------------------------------------------------------------------------------

def test_net_offsets_and_outputs(digits):
    x, y = digits
    net = make_net(tasks=('digit', 'parity', 'big'))
    assert net.tasks == ('digit', 'parity', 'big')
    assert net.offsets == {'digit': 0, 'parity': 10, 'big': 12} and net.num_classes == {'digit': 10, 'parity': 2, 'big': 2}
    assert net(x[:5], 'parity').shape == (5, 2)
    allout = net(x[:5])
    assert set(allout) == {'digit', 'parity', 'big'} and allout['digit'].shape == (5, 10)
    ids = torch.tensor([0, 2, 1, 1, 0])
    joint = net(x[:5], ids)
    assert joint.shape == (5, 14)
    torch.testing.assert_close(joint[1, 12:14], net(x[:5], 'big')[1])
    torch.testing.assert_close(joint[2, 10:12], net(x[:5], 'parity')[2])
    assert torch.isinf(joint[1, :12]).all() and torch.isinf(joint[0, 10:]).all()
    # the joint logits give the per-task cross-entropy
    yj = torch.tensor([3, 12, 11, 10, 7])
    ce = F.cross_entropy(joint, yj, reduction='none')
    torch.testing.assert_close(ce[1], F.cross_entropy(net(x[1:2], 'big'), torch.tensor([0])))   # joint label 12 = big's class 0
    torch.testing.assert_close(ce[0], F.cross_entropy(net(x[:1], 'digit'), torch.tensor([3])))


def test_task_model_is_an_ordinary_classifier(digits):
    x, y = digits
    net = make_net()
    view = net.task_model('digit')
    r = evaluate(view, tensor_loader(x[:64], y[:64], bs=32))
    assert r['loss'] == pytest.approx(F.cross_entropy(net(x[:64], 'digit'), y[:64]).item(), rel=1e-5)
    assert any(p is q for p in view.parameters() for q in net.parameters())   # a view, not a copy


@pytest.mark.parametrize('make, msg', [
    (lambda: MultiTaskNet(nn.Identity(), [nn.Linear(3, 2)]), 'dict'),
    (lambda: MultiTaskNet(nn.Identity(), {}), 'non-empty'),
    (lambda: MultiTaskNet(nn.Identity(), {'a.b': nn.Linear(3, 2)}), 'without dots'),
    (lambda: MultiTaskNet(nn.Identity(), {'a': nn.ReLU()}), 'no nn.Linear'),
    (lambda: MultiTaskNet(nn.Identity(), {'a': 'linear'}), 'nn.Module'),
    (lambda: MultiTaskNet('trunk', {'a': nn.Linear(3, 2)}), 'trunk must be'),
])
def test_net_bad_construction(make, msg):
    with pytest.raises((TypeError, ValueError), match=msg): make()


def test_net_bad_task(digits):
    x, _ = digits
    net = make_net()
    with pytest.raises(ValueError, match="unknown task 'fashion'"): net(x[:2], 'fashion')
    with pytest.raises(ValueError, match='unknown task'): net.task_model('fashion')
    with pytest.raises(ValueError, match='task ids run from'): net(x[:2], torch.tensor([0, 2]))
    with pytest.raises(TypeError, match='integer task ids'): net(x[:2], torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match='integer task ids'): net(x[:2], torch.tensor([0, 1, 1]))


# --- multitask_loader ---------------------------------------------------------------------------------

def test_loader_balanced_batches(digits):
    x, y = digits
    net = make_net()
    data = {'digit': (x[:100], y[:100]), 'parity': (x[100:112], y[100:112] % 2)}
    dl = multitask_loader(net, data, bs=20, shuffle=True, seed=3)
    assert len(dl) == 10                                   # ceil(100 / 10)
    batches = list(dl)
    for b in batches:
        assert sorted(b) == ['labels', 'task', 'x']
        assert (b['task'] == 0).sum() == 10 and (b['task'] == 1).sum() == 10
        assert (b['labels'][b['task'] == 1] >= 10).all() and (b['labels'][b['task'] == 1] <= 11).all()
    seen = torch.cat([b['labels'][b['task'] == 0] for b in batches])
    assert sorted(seen.tolist()) == sorted(y[:100].tolist())   # the larger task is seen exactly once per epoch
    again = [b['labels'].tolist() for b in multitask_loader(net, data, bs=20, shuffle=True, seed=3)]
    assert again == [b['labels'].tolist() for b in batches]
    epoch2 = [b['labels'].tolist() for b in dl]
    assert epoch2 != [b['labels'].tolist() for b in batches]   # reshuffled every epoch


def test_loader_plain_batches(digits):
    x, y = digits
    net = make_net()
    dl = multitask_loader(net, {'digit': (x[:30], y[:30]), 'parity': (x[:10], y[:10] % 2)}, bs=16, balanced=False)
    assert len(dl) == 3 and sum(len(b['labels']) for b in dl) == 40


@pytest.mark.parametrize('data, kw, msg', [
    (lambda x, y: {'digit': (x[:5], y[:5] + 10)}, {}, 'labels run from'),
    (lambda x, y: {'fashion': (x[:5], y[:5])}, {}, 'does not have'),
    (lambda x, y: {'digit': (x[:5], y[:4])}, {}, 'must match'),
    (lambda x, y: {'digit': (x[:5], y[:5]), 'parity': (x[:5, :, :8], y[:5] % 2)}, {}, 'one shape'),
    (lambda x, y: {'digit': (x[:5], y[:5]), 'parity': (x[:5], y[:5] % 2)}, {'bs': 1}, 'at least one example per task'),
    (lambda x, y: [(x[:5], y[:5])], {}, 'non-empty dict'),
])
def test_loader_bad_inputs(digits, data, kw, msg):
    x, y = digits
    with pytest.raises((TypeError, ValueError), match=msg): multitask_loader(make_net(), data(x, y), **kw)
    with pytest.raises(TypeError, match='MultiTaskNet'): multitask_loader(small_cnn(size=16), {'digit': (x[:5], y[:5])})


# --- multitask_loss and UncertaintyWeighting ---------------------------------------------------------

def test_loss_weights_each_task(digits):
    x, y = digits
    net = make_net()
    b = next(iter(multitask_loader(net, {'digit': (x[:40], y[:40]), 'parity': (x[40:60], y[40:60] % 2)}, bs=32)))
    logits = net(b['x'], b['task'])
    per = F.cross_entropy(logits, b['labels'], reduction='none')
    l0, l1 = per[b['task'] == 0].mean(), per[b['task'] == 1].mean()
    assert multitask_loss(net, {'digit': 0.2, 'parity': 0.8})(logits, b['labels']).item() == pytest.approx((0.2*l0 + 0.8*l1).item(), rel=1e-5)
    assert multitask_loss(net)(logits, b['labels']).item() == pytest.approx(((l0 + l1)/2).item(), rel=1e-5)
    only0 = b['task'] == 0                                 # a batch without task 1: its term is absent
    assert multitask_loss(net, {'digit': 0.2, 'parity': 0.8})(logits[only0], b['labels'][only0]).item() == pytest.approx(0.2*l0.item(), rel=1e-5)


@pytest.mark.parametrize('weights, msg', [
    ({'digit': 1.}, 'one weight for each'),
    ({'digit': 1., 'parity': -0.5}, '>= 0'),
    ({'digit': 1., 'parity': float('nan')}, '>= 0'),
    ({'digit': 0., 'parity': 0.}, 'every task weight is 0'),
    ({'digit': True, 'parity': 1.}, '>= 0'),
    ([0.5, 0.5], 'None, a dict'),
])
def test_loss_bad_weights(weights, msg):
    with pytest.raises((TypeError, ValueError), match=msg): multitask_loss(make_net(), weights)


def test_uncertainty_weighting_must_be_inside_the_net():
    net = make_net()
    uw = UncertaintyWeighting(net.tasks)
    with pytest.raises(ValueError, match='attach it first'): multitask_loss(net, uw)
    with pytest.raises(ValueError, match='must match'): multitask_loss(net, UncertaintyWeighting(['parity', 'digit']))
    net.weighting = uw
    assert callable(multitask_loss(net, uw))
    with pytest.raises(ValueError, match='at least one task'): UncertaintyWeighting([])


def test_uncertainty_weighting_optimum():
    uw = UncertaintyWeighting(['a', 'b'])
    assert uw.weights() == {'a': 1.0, 'b': 1.0}
    opt = torch.optim.SGD(uw.parameters(), lr=0.1)
    for _ in range(500):
        opt.zero_grad(); uw({'a': torch.tensor(0.5), 'b': torch.tensor(4.0)}).backward(); opt.step()
    w = uw.weights()
    assert w['a'] == pytest.approx(1.0, abs=1e-3) and w['b'] == pytest.approx(0.125, abs=1e-3)   # 1 / (2 L)


# --- training with fit on real digits -----------------------------------------------------------------

def _two_task_data(x, y):
    return {'digit': (x[:200], y[:200]), 'parity': (x[200:400], y[200:400] % 2)}, \
           {'digit': (x[1000:1300], y[1000:1300]), 'parity': (x[1000:1300], y[1000:1300] % 2)}


def test_hard_sharing_trains_with_fit(digits):
    x, y = digits
    data, test = _two_task_data(x, y)
    net = make_net(seed=1)
    net.weighting = uw = UncertaintyWeighting(net.tasks)
    dl = multitask_loader(net, data, bs=64, shuffle=True, seed=1)
    h = fit(net, dl, epochs=12, lr=1e-2, loss_fn=multitask_loss(net, uw), weight_decay=0., progress=False)
    assert h['train_loss'][-1] < h['train_loss'][0] - 0.5
    acc = {t: evaluate(net.task_model(t), tensor_loader(*test[t], bs=1000))['accuracy'] for t in net.tasks}
    assert acc['digit'] > 0.6 and acc['parity'] > 0.75, acc          # chance: 0.1 and 0.5
    assert uw.weights() != {'digit': 1.0, 'parity': 1.0}              # fit's optimizer trained the weights too
    # validation on mixed batches works through fit's evaluate, with the same loss
    h2 = fit(net, dl, multitask_loader(net, test, bs=256), epochs=1, lr=1e-3, loss_fn=multitask_loss(net, uw), progress=False)
    assert 0.6 < h2.records[0]['valid_accuracy'] <= 1


# --- soft sharing ---------------------------------------------------------------------------------------

def test_soft_sharing_value_and_errors():
    set_seed(0, threads=1)
    a, b = small_cnn(size=16), small_cnn(size=16)
    tie = soft_sharing_loss(a[:-1], b[:-1], strength=0.2)
    d2 = sum((p - q).pow(2).sum() for p, q in zip(a[:-1].parameters(), b[:-1].parameters()))
    assert tie(None, None, None, None).item() == pytest.approx(0.1*d2.item(), rel=1e-5)
    assert tie.strength == 0.2 and tie.n_tied == sum(p.numel() for p in a[:-1].parameters())
    assert soft_sharing_loss(a, copy.deepcopy(a))(None, None, None, None).item() == 0
    with pytest.raises(ValueError, match='hard sharing'): soft_sharing_loss(a, a)
    with pytest.raises(ValueError, match='same architecture'): soft_sharing_loss(a, small_cnn(size=32))
    with pytest.raises(ValueError, match='same architecture'): soft_sharing_loss(a[:-1], b)
    with pytest.raises(ValueError, match='>= 0'): soft_sharing_loss(a, b, strength=-1)
    with pytest.raises(ValueError, match='>= 0'): soft_sharing_loss(a, b, strength=float('inf'))
    with pytest.raises(TypeError, match='nn.Module'): soft_sharing_loss(a, 'b')
    with pytest.raises(ValueError, match='no parameters'): soft_sharing_loss(nn.ReLU(), nn.ReLU())


def test_l2_sp_is_soft_sharing_with_a_frozen_source():
    set_seed(0, threads=1)
    m = small_cnn(size=16)
    src = copy.deepcopy(m).requires_grad_(False)
    sp, soft = l2_sp(m, alpha=0.3, beta=0.), soft_sharing_loss(m[:-1], src[:-1], strength=0.3)
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.05*torch.randn_like(p))
    assert sp(m, None, torch.zeros(1), None).item() == pytest.approx(soft(m, None, None, None).item(), rel=1e-5)


def test_soft_sharing_pulls_trunks_together(digits):
    x, y = digits
    data, _ = _two_task_data(x, y)
    dist = {}
    for g in (0., 1.0):
        set_seed(0, threads=1)
        a, b = small_cnn(size=16), small_cnn(2, size=16)
        b[:-1].load_state_dict(a[:-1].state_dict())                # the same starting trunk, different heads
        net = MultiTaskNet(nn.Identity(), {'digit': a, 'parity': b})
        fit(net, multitask_loader(net, data, bs=64, shuffle=True), epochs=3, lr=1e-2, loss_fn=multitask_loss(net),
            extra_loss=soft_sharing_loss(a[:-1], b[:-1], g), weight_decay=0., progress=False)
        dist[g] = sum(weight_drift(a[:-1], b[:-1]).values())
    assert dist[1.0] < 0.5*dist[0.], dist


# --- weight_drift -----------------------------------------------------------------------------------------

def test_weight_drift():
    set_seed(0, threads=1)
    m0 = small_cnn(size=16); m1 = copy.deepcopy(m0)
    assert weight_drift(m1, m0) == {k: 0. for k in '01234'}
    with torch.no_grad(): m1[3][1].bias.add_(0.5)           # the 64 biases of the fc layer, by 0.5 each
    d = weight_drift(m1, m0)
    assert d['3'] == pytest.approx(0.5*8, rel=1e-5) and d['0'] == d['4'] == 0.
    ref_norm = torch.cat([p.flatten() for p in m0[3].parameters()]).norm().item()
    assert weight_drift(m1, m0, relative=True)['3'] == pytest.approx(4/ref_norm, rel=1e-5)
    with pytest.raises(ValueError, match='same architecture'): weight_drift(m1, small_cnn(size=32))
    with pytest.raises(ValueError, match='layer groups'): weight_drift(m1, m0[:-1])
    with pytest.raises(TypeError, match='nn.Module'): weight_drift(m1, m0.state_dict())

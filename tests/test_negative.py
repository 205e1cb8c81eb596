"""Tests of tltutor.negative: the negative transfer gap (values, intervals, verdicts, bad inputs), L2-SP,
adapters, source selection and the transfer decision."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

from tltutor.adapters import Adapter, add_adapters
from tltutor.negative import Decision, NTGResult, decide_transfer, negative_transfer_gap, select_source, target_likeness
from tltutor.regularize import l2_sp
from tltutor.train import fit
from tltutor.data import tensor_loader

SEEDS = [0, 1, 2, 3]


# --- negative_transfer_gap: values -------------------------------------------------------------------

def test_gap_is_error_with_minus_error_without():
    r = negative_transfer_gap([0.30, 0.32, 0.31, 0.29], [0.20, 0.21, 0.20, 0.22], SEEDS, metric='error')
    assert r.gaps == pytest.approx((0.10, 0.11, 0.11, 0.07))
    assert r.mean == pytest.approx(0.0975)
    assert r.verdict == 'negative' and r.ci_low > 0 and r.n == 4 and r.seeds == tuple(SEEDS)
    assert isinstance(r, NTGResult) and 'negative' in repr(r) and r.short().startswith('+0.0')


def test_accuracy_is_turned_into_error():
    acc_w, acc_wo = [0.80, 0.78, 0.83, 0.79], [0.84, 0.83, 0.85, 0.84]
    r = negative_transfer_gap(acc_w, acc_wo, metric='accuracy')       # seeds default to 0..3 for sequences
    e = negative_transfer_gap([1 - a for a in acc_w], [1 - a for a in acc_wo], metric='error')
    assert r.mean == pytest.approx(0.04) and r.mean == pytest.approx(e.mean) and r.verdict == e.verdict == 'negative'
    assert r.err_with == pytest.approx((0.20, 0.22, 0.17, 0.21))


def test_t_interval_matches_scipy():
    from scipy import stats
    g = np.array([0.05, -0.01, 0.03, 0.02, 0.00])
    r = negative_transfer_gap(list(0.5 + g), [0.5]*5, metric='error', confidence=0.9)
    lo, hi = stats.t.interval(0.9, len(g) - 1, loc=g.mean(), scale=stats.sem(g))
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi)) and r.half_width == pytest.approx((hi - lo)/2)
    assert r.std == pytest.approx(g.std(ddof=1))


def test_verdicts():
    assert negative_transfer_gap([0.1, 0.12, 0.11], [0.2, 0.21, 0.2], metric='error').verdict == 'positive'
    noisy = negative_transfer_gap([0.25, 0.18, 0.22, 0.2], [0.2, 0.2, 0.2, 0.2], metric='error')
    assert noisy.mean > 0 and noisy.ci_low < 0 < noisy.ci_high and noisy.verdict == 'inconclusive'
    tie = negative_transfer_gap([0.2, 0.2], [0.2, 0.2], metric='error')
    assert tie.mean == 0 and tie.verdict == 'inconclusive'
    with pytest.warns(UserWarning, match='zero width'):
        const = negative_transfer_gap([0.3, 0.3, 0.3], [0.2, 0.2, 0.2], metric='error')   # zero spread, clear sign
    assert const.half_width == pytest.approx(0) and const.verdict == 'negative'


def test_a_verdict_needs_the_minimum_effect():
    small = [0.503, 0.5035, 0.5028, 0.5031, 0.503]          # five seeds agree the source costs 0.3 points
    r = negative_transfer_gap(small, [0.5]*5, metric='error')
    assert r.ci_low > 0 and r.verdict == 'inconclusive' and r.below_min_effect and 'minimum effect 0.010' in repr(r)
    assert negative_transfer_gap(small, [0.5]*5, metric='error', min_effect=0).verdict == 'negative'
    big = negative_transfer_gap([0.53, 0.54, 0.52], [0.5]*3, metric='error', min_effect=0.01)
    assert big.verdict == 'negative' and not big.below_min_effect and 'minimum' not in repr(big)
    assert negative_transfer_gap([0.5]*3, [0.53, 0.54, 0.52], metric='error').verdict == 'positive'
    for bad in (-0.01, 1, True, '1%'):
        with pytest.raises(ValueError, match='min_effect'): negative_transfer_gap([.5, .4], [.4, .4], metric='error', min_effect=bad)


def test_warnings_for_a_zero_width_interval_and_two_seeds():
    with pytest.warns(UserWarning, match='zero width') as rec:     # the case: one image's gap on every seed
        r = negative_transfer_gap([0.497]*6, [0.5]*6, metric='accuracy')
    assert r.verdict == 'inconclusive' and not any('paired seeds' in str(w.message) for w in rec)
    with pytest.warns(UserWarning, match='only 2 paired seeds'): negative_transfer_gap([.3, .32], [.2, .21], metric='error')


def test_callable_arms_are_seeded_by_their_seed():
    draw = lambda s: float(np.random.rand())        # an arm that forgets to seed itself
    a = negative_transfer_gap(draw, lambda s: 0.5, [0, 1, 2], metric='error')
    np.random.rand(7)                                # whatever ran in between
    b = negative_transfer_gap(draw, lambda s: 0.5, [0, 1, 2], metric='error')
    assert a.err_with == b.err_with and len(set(a.err_with)) == 3
    c = negative_transfer_gap(draw, lambda s: 0.5, [0, 1, 2], metric='error', seed_arms=False)
    assert c.err_with != a.err_with                  # unseeded: the global generator's state decides
    with pytest.raises(ValueError, match='seed_arms=False'): negative_transfer_gap(draw, draw, ['a', 'b'], metric='error')
    assert negative_transfer_gap(draw, draw, ['a', 'b', 'c'], metric='error', seed_arms=False).n == 3
    assert negative_transfer_gap(draw, draw, list(np.arange(3)), metric='error').n == 3   # numpy integers are seeds too


def test_callables_are_called_once_per_seed_with_the_seed():
    calls = []
    def with_src(seed): calls.append(('w', seed)); return 0.5 + seed/100
    def without(seed): calls.append(('wo', seed)); return np.float32(0.5)
    r = negative_transfer_gap(with_src, without, [3, 7, 11], metric='accuracy')
    assert sorted(calls) == sorted([('w', 3), ('w', 7), ('w', 11), ('wo', 3), ('wo', 7), ('wo', 11)])
    assert r.gaps == pytest.approx((-0.03, -0.07, -0.11)) and r.seeds == (3, 7, 11)


def test_scalar_tensors_and_arrays_are_accepted():
    r = negative_transfer_gap(lambda s: torch.tensor(0.7), lambda s: np.array(0.6), [0, 1], metric='accuracy')
    assert r.mean == pytest.approx(-0.1)


unit = st.floats(0, 1, allow_nan=False)

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(unit, unit), min_size=2, max_size=10))
def test_swapping_arms_negates_and_metrics_agree(pairs):
    w, wo = [a for a, _ in pairs], [b for _, b in pairs]
    r = negative_transfer_gap(w, wo, metric='error')
    s = negative_transfer_gap(wo, w, metric='error')
    a = negative_transfer_gap([1 - x for x in w], [1 - x for x in wo], metric='accuracy')
    assert s.mean == pytest.approx(-r.mean, abs=1e-12) and a.mean == pytest.approx(r.mean, abs=1e-9)
    assert {r.verdict, s.verdict} in ({'negative', 'positive'}, {'inconclusive'})
    assert r.ci_low <= r.mean <= r.ci_high and -1 <= r.mean <= 1


# --- negative_transfer_gap: bad inputs ---------------------------------------------------------------

def test_too_few_or_repeated_seeds():
    with pytest.raises(ValueError, match='at least 2'): negative_transfer_gap(lambda s: .5, lambda s: .5, [0], metric='error')
    with pytest.raises(ValueError, match='at least 2'): negative_transfer_gap([.5], [.4], metric='error')
    with pytest.raises(ValueError, match='at least 2'): negative_transfer_gap([], [], metric='error')
    with pytest.raises(ValueError, match='distinct'): negative_transfer_gap(lambda s: .5, lambda s: .5, [1, 1], metric='error')
    with pytest.raises(ValueError, match='pass the paired seeds'): negative_transfer_gap(lambda s: .5, lambda s: .5, metric='error')
    with pytest.raises(TypeError, match='list of seeds'): negative_transfer_gap(lambda s: .5, lambda s: .5, 4, metric='error')


def test_metric_must_be_explicit_and_known():
    with pytest.raises(TypeError): negative_transfer_gap([.5, .4], [.4, .4])          # no metric given
    with pytest.raises(ValueError, match="'accuracy' or 'error'"): negative_transfer_gap([.5, .4], [.4, .4], metric='acc')
    for c in (0, 1, 1.5, -0.1, True, '95%'):
        with pytest.raises(ValueError, match='confidence'): negative_transfer_gap([.5, .4], [.4, .4], metric='error', confidence=c)


@pytest.mark.parametrize('bad', [None, 'high', {'accuracy': 0.8}, [0.8], True, torch.tensor([0.8, 0.9]), object()])
def test_arms_returning_non_numbers(bad):
    with pytest.raises(TypeError, match=r'with_source\(seed=0\)'):
        negative_transfer_gap(lambda s: bad, lambda s: 0.5, [0, 1], metric='accuracy')


@pytest.mark.parametrize('bad, hint', [(1.5, 'in \\[0, 1\\]'), (85.0, 'percentage'), (-0.1, 'in \\[0, 1\\]'),
                                       (float('nan'), 'in \\[0, 1\\]'), (float('inf'), 'in \\[0, 1\\]')])
def test_out_of_range_values(bad, hint):
    with pytest.raises(ValueError, match=hint):
        negative_transfer_gap(lambda s: 0.5, lambda s: bad, [0, 1], metric='error')
    with pytest.raises(ValueError, match='without_source'):
        negative_transfer_gap([0.5, 0.5], [0.5, bad], metric='error')


def test_mismatched_lengths_and_wrong_arm_types():
    with pytest.raises(ValueError, match='one value per seed'): negative_transfer_gap([.5, .4, .3], [.4, .4], metric='error')
    with pytest.raises(ValueError, match='3 values but there are 2 seeds'):
        negative_transfer_gap([.5, .4, .3], lambda s: .4, [0, 1], metric='error')
    with pytest.raises(TypeError, match='callable seed'): negative_transfer_gap(0.5, [.4, .4], [0, 1], metric='error')
    with pytest.raises(TypeError, match='callable seed'): negative_transfer_gap('0.5', [.4, .4], [0, 1], metric='error')


# --- L2-SP --------------------------------------------------------------------------------------------

def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_l2_sp_penalty_values_and_gradient():
    m = _net()
    reg = l2_sp(m, alpha=0.5, beta=0.1)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    head_sq = sum(p.pow(2).sum() for p in m[2].parameters()).item()
    assert reg(m, x, m(x), y).item() == pytest.approx(0.05*head_sq, rel=1e-5)
    assert reg.n_transferred == 4*8 + 8
    with torch.no_grad(): m[0].weight.add_(0.2)
    assert reg(m, x, m(x), y).item() == pytest.approx(0.25*0.04*32 + 0.05*head_sq, rel=1e-5)
    m.zero_grad(); reg(m, x, m(x), y).backward()
    assert torch.allclose(m[0].weight.grad, torch.full_like(m[0].weight, 0.5*0.2))   # α (w − w⁰)
    assert torch.allclose(m[2].weight.grad, 0.1*m[2].weight)                         # β w_new


def test_l2_sp_plugs_into_fit_and_pulls_towards_the_start():
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    dl = tensor_loader(x, y, bs=16, shuffle=True)
    drift = {}
    for alpha in (0.0, 50.0):
        m = _net(); w0 = m[0].weight.detach().clone()
        fit(m, dl, epochs=3, lr=0.05, extra_loss=l2_sp(m, alpha=alpha, beta=0.0), weight_decay=0., progress=False)
        drift[alpha] = (m[0].weight.detach() - w0).norm().item()
    assert drift[50.0] < 0.5*drift[0.0]


def test_l2_sp_head_choice_and_errors():
    m = _net()
    reg = l2_sp(m, head=m[2]); assert reg.n_transferred == 40
    reg2 = l2_sp(m, head=list(m[2].parameters())); assert reg2.n_transferred == 40
    with pytest.raises(ValueError, match='>= 0'): l2_sp(m, alpha=-0.1)
    with pytest.raises(ValueError, match='>= 0'): l2_sp(m, beta=float('nan'))
    with pytest.raises(ValueError, match='>= 0'): l2_sp(m, alpha='big')
    with pytest.raises(ValueError, match='part of model'): l2_sp(m, head=nn.Linear(8, 3))
    with pytest.raises(ValueError, match='part of model'): l2_sp(m, head=[])
    with pytest.raises(ValueError, match='no parameters'): l2_sp(nn.ReLU())


# --- adapters -----------------------------------------------------------------------------------------

def test_adapter_is_identity_at_start_and_trainable():
    a = Adapter(8, reduction=4, kernel_size=3)
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(a(x), x)
    a(x).sum().backward()
    assert a.up.weight.grad is not None and a.up.weight.grad.abs().sum() > 0
    for bad in (dict(channels=0), dict(channels=8, reduction=0), dict(channels=8, kernel_size=2)):
        with pytest.raises(ValueError): Adapter(**bad)


def test_add_adapters_freezes_the_trunk_and_keeps_its_output():
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1), nn.Flatten())
    x = torch.randn(2, 3, 6, 6)
    want = trunk(x).detach()
    ad = add_adapters(trunk)
    assert [type(m).__name__ for m in ad] == ['Conv2d', 'ReLU', 'Adapter', 'Conv2d', 'Adapter', 'Flatten']
    assert torch.allclose(ad(x), want)
    assert not any(p.requires_grad for p in trunk.parameters())
    assert all(p.requires_grad for m in ad if isinstance(m, Adapter) for p in m.parameters())
    with pytest.raises(TypeError, match='nn.Sequential'): add_adapters(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match='no nn.Conv2d'): add_adapters(nn.Sequential(nn.Linear(2, 2)))


# --- source selection ---------------------------------------------------------------------------------

def test_select_source_keeps_the_target_like_samples():
    rng = np.random.default_rng(0)
    near, far = rng.normal(0, 1, (100, 5)), rng.normal(4, 1, (100, 5))
    src, tgt = np.r_[far, near], rng.normal(0, 1, (80, 5))
    assert target_likeness(src, tgt, 'centroid')[100:].min() > target_likeness(src, tgt, 'centroid')[:100].max() - 2
    for method in ('domain', 'centroid'):
        keep = select_source(src, tgt, k=100, method=method)
        assert len(keep) == 100 and len(set(keep.tolist())) == 100
        assert (keep >= 100).mean() > 0.9, method
    s = target_likeness(torch.tensor(src), torch.tensor(tgt))
    assert s.shape == (200,) and s[100:].mean() > s[:100].mean()
    assert len(select_source(src, tgt, k=0.25)) == 50
    imgs = torch.rand(10, 1, 4, 4)   # images are flattened
    assert len(select_source(imgs, imgs[:5], k=3)) == 3


def test_select_source_errors():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match='between 1 and 10'): select_source(x, x, k=0)
    with pytest.raises(ValueError, match='between 1 and 10'): select_source(x, x, k=11)
    with pytest.raises(ValueError, match='between 1 and 10'): select_source(x, x, k=1.5)
    with pytest.raises(ValueError, match="'domain' or 'centroid'"): select_source(x, x, k=2, method='knn')
    with pytest.raises(ValueError, match='features'): target_likeness(x, np.zeros((10, 4)))
    with pytest.raises(ValueError, match='at least 2 samples'): target_likeness(np.zeros(3), x)
    with pytest.raises(ValueError, match='NaN'): target_likeness(np.full((4, 3), np.nan), x)


# --- decide_transfer ----------------------------------------------------------------------------------

def test_decide_transfer_from_a_gap():
    neg = negative_transfer_gap([.3, .31, .32], [.2, .2, .21], metric='error')
    pos = negative_transfer_gap([.1, .11, .1], [.2, .2, .21], metric='error')
    inc = negative_transfer_gap([.25, .18, .22, .2], [.2]*4, metric='error')
    assert decide_transfer(neg).choice == 'scratch' and decide_transfer(pos).choice == 'transfer'
    assert inc.verdict == 'inconclusive' and inc.mean > 0
    d = decide_transfer(inc)                          # default: follow the point estimate, and say the evidence is weak
    assert d.choice == 'scratch' and 'point estimate' in d.reason
    helps = negative_transfer_gap([.15, .22, .18, .2], [.2]*4, metric='error')
    assert helps.verdict == 'inconclusive' and helps.mean < 0 and decide_transfer(helps).choice == 'transfer'
    more = decide_transfer(inc, on_inconclusive='inconclusive')
    assert more.choice == 'inconclusive' and 'collect more evidence' in more.reason
    assert decide_transfer(inc, on_inconclusive='transfer').choice == 'transfer'
    assert decide_transfer(inc, on_inconclusive='scratch').choice == 'scratch'
    d = decide_transfer(neg)
    assert isinstance(d, Decision) and 'hurts' in str(d) and str(d).startswith('scratch')


def test_decide_transfer_from_a_distance_and_errors():
    assert decide_transfer(0.8, threshold=0.5).choice == 'scratch'
    assert decide_transfer(0.5, threshold=0.5).choice == 'transfer'
    assert decide_transfer(np.float64(0.1), threshold=0.5).choice == 'transfer'
    with pytest.raises(ValueError, match='threshold'): decide_transfer(0.8)
    with pytest.raises(TypeError, match='NTGResult or a domain distance'): decide_transfer('far', threshold=1)
    with pytest.raises(TypeError, match='NTGResult or a domain distance'): decide_transfer(math.nan, threshold=1)
    with pytest.raises(TypeError, match='NTGResult or a domain distance'): decide_transfer(True, threshold=1)
    neg = negative_transfer_gap([.3, .31], [.2, .2], metric='error')
    with pytest.raises(ValueError, match='drop it'): decide_transfer(neg, threshold=0.5)
    with pytest.raises(ValueError, match='on_inconclusive'): decide_transfer(neg, on_inconclusive='maybe')

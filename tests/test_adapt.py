"""Tests of tltutor.adapt: the gradient-reversal layer (exact, property-based), the λ schedule, the loss pieces
as `fit` extra losses, the contrastive loss, target streams, source weights, reverse validation, importance-weighted validation (DEV / IWCV), the collapse check
and bad inputs."""
import copy, functools, math

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

from tltutor.adapt import (GradientReverse, GradientReverseLayer, MultiSourceAlignment, TargetStream,
                           adapt_opt, alignment_loss, class_contrastive_loss, contrastive_alignment, dann_lambda,
                           collapsed, dann_loss, dev_risk, grad_reverse, prediction_shares,
                           reverse_validation, source_weights)
from tltutor.models import FeatureClassifier, mlp_classifier
from tltutor.models import bottleneck_features, feature_cnn
from tltutor.data import tensor_loader
from tltutor.divergence import coral_loss, mmd_loss
from tltutor.train import fit

torch.set_num_threads(1)
seeds = st.integers(0, 10_000)


def blobs(seed, n=64, d=8, shift=0.0):
    "Two classes of Gaussian points [n, d], labels 0/1; `shift` moves the whole domain."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, d, generator=g) + 2.0*y[:, None].float() + shift
    return x, y


# --- gradient reversal -------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(1, 6), st.integers(1, 6), st.floats(0, 10, allow_nan=False, allow_infinity=False))
def test_reversal_is_identity_forward_and_exactly_minus_coeff_backward(seed, n, d, coeff):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, requires_grad=True)
    up = torch.randn(n, d, generator=g)
    out = grad_reverse(x, coeff)
    assert torch.equal(out, x)
    out.backward(up)
    assert torch.equal(x.grad, -coeff*up)


@settings(max_examples=30, deadline=None)
@given(seeds, st.floats(0.01, 5))
def test_reversal_layer_in_a_network_negates_the_upstream_gradient(seed, coeff):
    torch.manual_seed(seed)
    lin, head = nn.Linear(4, 3), nn.Linear(3, 1)
    x = torch.randn(5, 4)
    (head(GradientReverseLayer(coeff)(lin(x)))).sum().backward()
    g_rev = lin.weight.grad.clone()
    lin.weight.grad = None
    (-coeff*head(lin(x))).sum().backward()
    assert torch.allclose(g_rev, lin.weight.grad, atol=1e-6)


def test_reversal_bad_inputs():
    with pytest.raises(TypeError, match='must be a number'): grad_reverse(torch.zeros(2), 'x')
    with pytest.raises(TypeError, match='needs a tensor'): grad_reverse([1.0], 1.0)
    assert 'coeff=0.5' in repr(GradientReverseLayer(0.5))
    assert GradientReverse.apply(torch.ones(2), 1.0).tolist() == [1.0, 1.0]


# --- schedule ----------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_dann_lambda_is_monotone_in_unit_interval(a, b):
    lo, hi = sorted((a, b))
    assert 0 <= dann_lambda(lo) <= dann_lambda(hi) < 1
    assert dann_lambda(a) == pytest.approx(2/(1 + math.exp(-10*a)) - 1)


def test_dann_lambda_bad_progress():
    assert dann_lambda(0) == 0
    with pytest.raises(ValueError, match=r'\[0, 1\]'): dann_lambda(-0.1)


# --- model shape and streams ---------------------------------------------------------------------------

def test_feature_classifier_shapes_and_copies():
    net = feature_cnn()
    x = torch.rand(3, 3, 28, 28)
    assert net(x).shape == (3, 10) and net.last_features.shape == (3, 128)
    assert copy.deepcopy(net).last_features is None
    assert torch.allclose(bottleneck_features(net, x), net.embed(x).detach(), atol=1e-6)
    m = mlp_classifier(8, 2)
    assert m(torch.zeros(4, 8)).shape == (4, 2)
    with pytest.raises(ValueError, match='num_classes=1'): FeatureClassifier(nn.Identity(), 4, 1)
    with pytest.raises(ValueError, match='feat_dim'): FeatureClassifier(nn.Identity(), 0, 2)


def test_target_stream_drops_labels_and_cycles():
    x, y = blobs(0, n=10)
    s = TargetStream(tensor_loader(x, y, bs=4))
    got = [s.next() for _ in range(4)]
    assert all(isinstance(b, torch.Tensor) for b in got)
    assert [len(b) for b in got] == [4, 4, 2, 4]
    t = TargetStream(x, bs=4, seed=1)
    assert len(t.next()) == 4
    with pytest.raises(ValueError, match='empty'): TargetStream(torch.zeros(0, 3))
    with pytest.raises(TypeError, match='tensor of inputs or a DataLoader'): TargetStream([1, 2])


# --- losses as extra_loss ---------------------------------------------------------------------------

@pytest.mark.parametrize('divergence', [mmd_loss, coral_loss])
def test_alignment_loss_ramps_and_trains_through_fit(divergence):
    torch.manual_seed(0)
    xs, ys = blobs(0); xt, _ = blobs(1, shift=1.5)
    model = mlp_classifier(8, 2, dropout=0.0)
    loss = alignment_loss(divergence, xt, weight=1.0, total_steps=8, bs=16)
    fit(model, tensor_loader(xs, ys, bs=16), epochs=2, opt=adapt_opt(model, loss, lr=1e-2), extra_loss=loss, progress=False)
    assert loss.step == 8 and len(loss.records) == 8 and all(np.isfinite(loss.records))
    assert loss.coeff() == pytest.approx(dann_lambda(1.0))


def test_mmd_alignment_reduces_the_divergence():
    torch.manual_seed(0)
    xs, ys = blobs(0, n=128); xt, _ = blobs(1, n=128, shift=2.0)
    def run(weight):
        torch.manual_seed(0); model = mlp_classifier(8, 2, dropout=0.0)
        loss = alignment_loss(mmd_loss, xt, weight=weight, bs=32) if weight else None
        fit(model, tensor_loader(xs, ys, bs=32, shuffle=True), epochs=8, opt=adapt_opt(model, *([loss] if loss else []), lr=1e-2),
            extra_loss=loss, progress=False)
        return mmd_loss(bottleneck_features(model, xs), bottleneck_features(model, xt)).item()
    assert run(1.0) < 0.5*run(0)


def test_dann_trains_its_discriminator_and_refuses_an_untrained_one():
    torch.manual_seed(0)
    xs, ys = blobs(0); xt, _ = blobs(1, shift=3.0)
    model = mlp_classifier(8, 2)
    loss = dann_loss(64, xt, weight=1.0, total_steps=8, bs=16)
    w0 = next(loss.discriminator.parameters()).detach().clone()
    fit(model, tensor_loader(xs, ys, bs=16), epochs=2, opt=adapt_opt(model, loss, lr=1e-2), extra_loss=loss, progress=False)
    assert not torch.equal(w0, next(loss.discriminator.parameters()))
    assert all(0 <= r <= 1 for r in loss.records) and loss.grl.coeff == pytest.approx(dann_lambda(7/8))
    bad = dann_loss(64, xt, bs=16)
    with pytest.raises(ValueError, match='not being trained'):
        fit(mlp_classifier(8, 2), tensor_loader(xs, ys, bs=16), epochs=2, extra_loss=bad, progress=False)


def test_dann_ramps_over_fits_own_steps_by_default():
    torch.manual_seed(0)
    xs, ys = blobs(0); xt, _ = blobs(1, shift=3.0)
    model = mlp_classifier(8, 2)
    loss = dann_loss(64, xt, weight=0.5, bs=16)                    # total_steps='auto'
    dl = tensor_loader(xs, ys, bs=16)
    fit(model, dl, epochs=3, opt=adapt_opt(model, loss, lr=1e-2), extra_loss=loss, progress=False)
    assert loss.total_steps == 3*len(dl) == loss.step
    assert loss.grl.coeff == pytest.approx(0.5*dann_lambda((loss.step - 1)/loss.step))
    const = dann_loss(64, xt, weight=0.5, total_steps=None, bs=16)
    fit(model, dl, epochs=1, opt=adapt_opt(model, const, lr=1e-2), extra_loss=const, progress=False)
    assert const.total_steps is None and const.grl.coeff == 0.5
    stray = dann_loss(64, xt, bs=16)                                # 'auto', but no fit to plan it
    with pytest.warns(UserWarning, match="loss.plan"): assert stray.coeff() == 1.0
    with pytest.raises(ValueError, match="'auto'"): dann_loss(64, xt, total_steps='all')
    with pytest.raises(ValueError, match="'auto'"): alignment_loss(mmd_loss, xt, total_steps=True)


def _dann_warnings(shift, weight):
    torch.manual_seed(0)
    xs, ys = blobs(0, n=256); xt, _ = blobs(1, n=256, shift=shift)
    model = mlp_classifier(8, 2)
    loss = dann_loss(64, xt, weight=weight, bs=32, total_steps=40)
    loss.warn_after = 30                                            # checked over steps 21-50
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter('always')
        fit(model, tensor_loader(xs, ys, bs=32), epochs=7, opt=adapt_opt(model, loss, lr=1e-2), extra_loss=loss, progress=False)
    return [str(w.message) for w in rec if 'discriminator' in str(w.message)], loss


def test_dann_warns_when_the_discriminator_wins_or_is_at_chance():
    msgs, loss = _dann_warnings(shift=8.0, weight=0.0)             # no reversal, far-apart domains: it always wins
    assert np.mean(loss.records[20:50]) >= 0.98 and len(msgs) == 1 and 'perfectly separable' in msgs[0] and 'steps 21–50' in msgs[0]
    msgs, loss = _dann_warnings(shift=0.0, weight=1.0)             # one domain twice: nothing to tell apart
    assert np.mean(loss.records[20:50]) <= 0.55 and len(msgs) == 1 and 'at chance' in msgs[0]


def test_adapt_opt_gives_the_discriminator_its_own_rate():
    model, loss = mlp_classifier(8, 2), dann_loss(64, blobs(1)[0], bs=16)
    one = adapt_opt(model, loss, lr=1e-2)
    assert len(one.param_groups) == 1 and one.param_groups[0]['lr'] == 1e-2
    two = adapt_opt(model, loss, lr=1e-2, loss_lr=1e-3)
    assert [g['lr'] for g in two.param_groups] == [1e-2, 1e-3]
    assert {id(p) for p in two.param_groups[1]['params']} == {id(p) for p in loss.parameters()}
    for bad in (0, -1e-3, True, '1e-3'):
        with pytest.raises(ValueError, match='loss_lr'): adapt_opt(model, loss, loss_lr=bad)


def test_contrastive_alignment_through_fit():
    torch.manual_seed(0)
    xs, ys = blobs(0); xt, _ = blobs(1, shift=0.5)
    model = mlp_classifier(8, 2)
    loss = contrastive_alignment(xt, weight=0.5, threshold=0.0, bs=16)
    fit(model, tensor_loader(xs, ys, bs=16), epochs=1, opt=adapt_opt(model, lr=1e-2), extra_loss=loss, progress=False)
    assert loss.records == [1.0]*4          # threshold 0: every target example is kept


def test_multi_source_alignment_through_fit():
    torch.manual_seed(0)
    (x1, y1), (x2, y2), (xt, _) = blobs(0), blobs(1, shift=1.0), blobs(2, shift=2.0)
    model = mlp_classifier(8, 2)
    loss = MultiSourceAlignment(mmd_loss, [x1, x2], xt, weight=0.5, bs=16)
    fit(model, tensor_loader(torch.cat([x1, x2]), torch.cat([y1, y2]), bs=16), epochs=1, opt=adapt_opt(model, lr=1e-2),
        extra_loss=loss, progress=False)
    assert len(loss.sources) == 2 and len(loss.records) == 8
    with pytest.raises(ValueError, match='one tensor'): MultiSourceAlignment(mmd_loss, [], xt)


def test_loss_bad_inputs():
    xt, _ = blobs(0)
    with pytest.raises(ValueError, match='weight'): alignment_loss(mmd_loss, xt, weight=-1)
    with pytest.raises(ValueError, match='total_steps'): alignment_loss(mmd_loss, xt, total_steps=0)
    with pytest.raises(TypeError, match='divergence must be a function'): alignment_loss('mmd', xt)
    with pytest.raises(ValueError, match='threshold'): contrastive_alignment(xt, threshold=2)
    loss = alignment_loss(mmd_loss, xt)
    with pytest.raises(TypeError, match='FeatureClassifier'): loss(nn.Linear(8, 2), None, None, None)
    with pytest.raises(TypeError, match='no features of the current batch'): loss(mlp_classifier(8, 2), None, None, None)
    with pytest.raises(ValueError, match='nothing to train'): adapt_opt(nn.Identity())


# --- contrastive loss ---------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(2, 5))
def test_contrastive_prefers_matching_classes(seed, k):
    g = torch.Generator().manual_seed(seed)
    centres = 5*torch.randn(k, 6, generator=g)
    y = torch.arange(4*k) % k
    zs = centres[y] + 0.1*torch.randn(4*k, 6, generator=g)
    zt = centres[y] + 0.1*torch.randn(4*k, 6, generator=g)
    right = class_contrastive_loss(zs, y, zt, y)
    wrong = class_contrastive_loss(zs, y, zt, (y + 1) % k)
    assert right < wrong and right >= 0


def test_contrastive_edge_cases():
    z = torch.randn(4, 3, requires_grad=True)
    out = class_contrastive_loss(z[:2], torch.tensor([0, 0]), z[2:], torch.tensor([1, 1]))
    assert out.item() == 0 and out.requires_grad                      # no cross-domain pair: zero, still differentiable
    with pytest.raises(ValueError, match='temperature'): class_contrastive_loss(z, torch.zeros(4), z, torch.zeros(4), 0)
    with pytest.raises(ValueError, match='one label per feature'): class_contrastive_loss(z, torch.zeros(3), z, torch.zeros(4))
    with pytest.raises(ValueError, match='same d'): class_contrastive_loss(z, torch.zeros(4), z[:, :2], torch.zeros(4))


# --- source weights, reverse validation -----------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 5), min_size=1, max_size=6), st.floats(0.01, 2))
def test_source_weights_are_a_distribution_ordered_by_distance(d, tau):
    w = source_weights(d, tau)
    assert w.sum() == pytest.approx(1) and (w >= 0).all()
    order = np.argsort(d, kind='stable')
    assert all(w[order[i]] >= w[order[i+1]] - 1e-12 for i in range(len(d) - 1))


def test_source_weights_bad_inputs():
    with pytest.raises(ValueError, match='one per source'): source_weights([])
    with pytest.raises(ValueError, match='one per source'): source_weights([0.1, float('nan')])
    with pytest.raises(ValueError, match='temperature'): source_weights([0.1], 0)


def test_reverse_validation_rewards_consistent_pseudo_labels():
    torch.manual_seed(0)
    xs, ys = blobs(0, n=200)
    model = mlp_classifier(8, 2, dropout=0.0)
    fit(model, tensor_loader(xs, ys, bs=32, shuffle=True), epochs=10, lr=1e-2, progress=False)
    same = reverse_validation(model, xs[:100], ys[:100], blobs(1, n=200)[0])
    far = reverse_validation(model, xs[:100], ys[:100], blobs(2, n=200, shift=-6.0)[0])
    assert same > 0.85 and far < same
    with pytest.raises(ValueError, match='must match'): reverse_validation(model, xs[:10], ys[:9], xs)


@functools.lru_cache(maxsize=None)
def trained_blob_model(seed=0):
    "One small MLP trained on two Gaussian blobs (shared by the tests below, which never modify it)."
    torch.manual_seed(seed)
    xs, ys = blobs(seed, n=400)
    model = mlp_classifier(8, 2, dropout=0.0)
    fit(model, tensor_loader(xs, ys, bs=32, shuffle=True), epochs=10, lr=1e-2, progress=False)
    return model


def test_dev_risk_matches_the_validation_loss_without_a_shift_and_rises_with_one():
    model = trained_blob_model()
    tr, (va, vy) = blobs(1, n=400)[0], blobs(2, n=400)
    with torch.no_grad(): val_loss = nn.functional.cross_entropy(model(va), vy).item()
    same = dev_risk(model, tr, va, vy, blobs(3, n=400)[0])
    iw_same = dev_risk(model, tr, va, vy, blobs(3, n=400)[0], control_variate=False)
    assert abs(same - val_loss) < 0.3*val_loss + 0.02 and abs(iw_same - val_loss) < 0.3*val_loss + 0.02
    xt, yt = blobs(4, n=400, shift=1.5)                  # a shift that moves points across the boundary
    with torch.no_grad(): tgt_loss = nn.functional.cross_entropy(model(xt), yt).item()
    assert tgt_loss > 2*val_loss                            # the premise: the shift hurts
    assert dev_risk(model, tr, va, vy, xt) > same           # and DEV sees the risk rise, without target labels


def test_dev_control_variate_changes_only_the_variance_term():
    "DEV and IWCV estimate the same target risk; DEV's control variate makes it vary less from one validation sample to the next."
    model = trained_blob_model()
    tr, xt = blobs(1, n=300)[0], blobs(3, n=300, shift=0.7)[0]
    va, vy = blobs(2, n=3000)
    dev_all, iw_all = dev_risk(model, tr, va, vy, xt), dev_risk(model, tr, va, vy, xt, control_variate=False)
    assert abs(dev_all - iw_all) < 0.05 and dev_all != iw_all            # a large sample: the same expectation
    rng = np.random.default_rng(0)
    draws = [torch.from_numpy(rng.choice(len(va), 150, replace=False)) for _ in range(16)]
    dev = np.array([dev_risk(model, tr, va[i], vy[i], xt) for i in draws])
    iw = np.array([dev_risk(model, tr, va[i], vy[i], xt, control_variate=False) for i in draws])
    assert np.isfinite(dev).all() and dev.std() < 0.7*iw.std(), (dev.std(), iw.std())   # measured: 0.19 vs 0.43 (30 draws)


def test_prediction_shares_and_collapse():
    model = trained_blob_model()
    x = blobs(5, n=200)[0]
    shares = prediction_shares(model, x)
    assert shares.shape == (2,) and abs(shares.sum() - 1) < 1e-9 and shares.min() > 0.3
    assert not collapsed(model, x)
    stuck = copy.deepcopy(model)
    with torch.no_grad(): stuck.head.bias.copy_(torch.tensor([0., 1e4]))   # everything -> class 1
    assert prediction_shares(stuck, x)[1] == 1.0 and collapsed(stuck, x) and collapsed(stuck, x, max_share=1.0) is False


def test_selection_helpers_bad_inputs():
    model = trained_blob_model()
    x, y = blobs(0, n=20)
    with pytest.raises(ValueError, match='empty'): prediction_shares(model, x[:0])
    with pytest.raises(ValueError, match=r'\(1/K, 1\]'): collapsed(model, x, max_share=0.5)
    with pytest.raises(ValueError, match=r'\(1/K, 1\]'): collapsed(model, x, max_share=True)
    with pytest.raises(ValueError, match='must match'): dev_risk(model, x, x, y[:5], x)
    with pytest.raises(ValueError, match='at least 2'): dev_risk(model, x[:1], x, y, x)

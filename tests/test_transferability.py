"""The transferability scores against hand computations, their defining properties, an independent LogME, and their errors."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.stats import kendalltau, multivariate_normal, weightedtau

from tltutor.transferability import h_score, leep, logme, nce, rank_correlation


def softmax_outputs(g, n, k, scale=2.0):
    logits = scale*g.normal(size=(n, k))
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e/e.sum(1, keepdims=True)


def test_leep_hand_computed_two_classes():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])   # θ(x_i) over source classes z = 0, 1
    y = np.array([0, 0, 1, 1])
    # P̂(y, z) = (1/n) Σ_i θ(x_i)_z 1[y_i = y], n = 4
    p00, p01 = (0.9 + 0.8)/4, (0.1 + 0.2)/4     # y = 0: 0.425, 0.075
    p10, p11 = (0.3 + 0.2)/4, (0.7 + 0.8)/4     # y = 1: 0.125, 0.375
    pz0, pz1 = p00 + p10, p01 + p11             # P̂(z) = 0.55, 0.45
    c00, c01, c10, c11 = p00/pz0, p01/pz1, p10/pz0, p11/pz1   # P̂(y | z): 17/22, 1/6, 5/22, 5/6
    assert (c00, c01, c10, c11) == pytest.approx((17/22, 1/6, 5/22, 5/6), abs=1e-15)
    eep = [0.9*c00 + 0.1*c01, 0.8*c00 + 0.2*c01,   # Σ_z P̂(y_i | z) θ(x_i)_z for the two y = 0 samples
           0.3*c10 + 0.7*c11, 0.2*c10 + 0.8*c11]   # ... and the two y = 1 samples
    expected = sum(math.log(e) for e in eep)/4
    assert leep(probs, y) == pytest.approx(expected, abs=1e-12)
    assert leep(torch.tensor(probs), torch.tensor(y)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize('p', [0.5, 0.6, 0.9, 0.99])
def test_leep_symmetric_closed_form(p):
    "θ puts p on the source class equal to y: P̂(y|z) is p or 1 − p, so LEEP = log(p² + (1 − p)²)."
    probs = np.array([[p, 1 - p]]*3 + [[1 - p, p]]*3)
    assert leep(probs, np.array([0]*3 + [1]*3)) == pytest.approx(math.log(p**2 + (1 - p)**2), abs=1e-12)


@pytest.mark.parametrize('seed', range(5))
def test_leep_and_nce_are_at_most_zero_and_bounded_by_each_other(seed):
    g = np.random.default_rng(seed)
    probs = softmax_outputs(g, 100, 6)
    y = g.integers(0, 4, 100)
    z = probs.argmax(1)
    s_leep, s_nce = leep(probs, y), nce(z, y)
    assert s_leep <= 0 and s_nce <= 0
    assert s_leep >= s_nce + np.log(probs[np.arange(100), z]).mean() - 1e-12   # Nguyen et al. 2020's bound
    assert leep(np.eye(6)[z], y) == pytest.approx(s_nce, abs=1e-12)            # hard outputs: LEEP = NCE
    h_y = -sum(q*math.log(q) for q in np.bincount(y)/100)
    assert s_nce >= -h_y - 1e-12                                               # conditioning never adds entropy


def test_nce_is_zero_when_y_is_a_function_of_z():
    z = np.random.default_rng(0).integers(0, 9, 200)
    assert nce(z, z % 3) == 0.0
    assert nce(z, (z >= 4).astype(int)) == 0.0
    assert nce(z, z) == 0.0


def test_nce_hand_computed():
    # z = 0 has y ∈ {0, 1} (H = log 2, P̂(z = 0) = 1/3); z = 1 and z = 2 fix y (H = 0)
    assert nce([0, 0, 1, 1, 2, 2], [0, 1, 0, 0, 1, 1]) == pytest.approx(-math.log(2)/3, abs=1e-15)
    assert nce([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-math.log(2), abs=1e-15)   # independent: −H(Y)


@pytest.mark.parametrize('seed', range(4))
def test_h_score_invariant_to_invertible_linear_maps(seed):
    g = np.random.default_rng(seed)
    y = g.integers(0, 4, 400)
    f = g.normal(size=(400, 8)) + 0.7*np.eye(8)[2*y]             # a few features carry the class
    q, _ = np.linalg.qr(g.normal(size=(8, 8)))
    A = q @ np.diag(g.uniform(0.5, 2.0, 8))                     # well conditioned (condition number ≤ 4)
    b = g.normal(size=8)*5
    assert h_score(f @ A + b, y) == pytest.approx(h_score(f, y), rel=1e-8)


def test_h_score_range_and_rank_deficient_features():
    g = np.random.default_rng(0)
    y = g.integers(0, 5, 300)
    assert h_score(np.eye(5)[y], y) == pytest.approx(4, abs=1e-9)              # class-constant features: K − 1
    f = g.normal(size=(300, 6)) + np.eye(5, 6)[y]
    with_copies = np.c_[f, f[:, :2] @ g.normal(size=(2, 3)), np.zeros((300, 2))]   # dependent and constant columns
    assert h_score(with_copies, y) == pytest.approx(h_score(f, y), rel=1e-7)
    assert 0 <= h_score(f, y) <= 4


def _corrupt(g, y, frac, k):
    "y with a fraction `frac` of the labels replaced by uniform random classes."
    y = y.copy()
    hit = g.random(len(y)) < frac
    y[hit] = g.integers(0, k, hit.sum())
    return y


def test_logme_increases_as_labels_become_linear():
    fracs = [1.0, 0.5, 0.2, 0.0]                                 # the share of labels replaced by noise
    means = []
    for frac in fracs:
        vals = []
        for seed in range(3):
            g = np.random.default_rng(seed)
            F = g.normal(size=(300, 8))
            y = (F @ g.normal(size=(8, 4))).argmax(1)
            vals.append(logme(F, _corrupt(g, y, frac, 4)))
        means.append(np.mean(vals))
    assert all(b > a + 0.01 for a, b in zip(means, means[1:])), means   # steps of 0.024 or more on these seeds


def _reference_logme(F, y):
    "Independent LogME: log N(y_c; 0, α⁻¹FFᵀ + β⁻¹I) maximised over (log α, log β) numerically, averaged over classes, / n."
    n = len(y)
    out = []
    for c in range(y.max() + 1):
        yc = (y == c).astype(float)
        def neg_log_evidence(theta):
            alpha, beta = np.exp(theta)
            return -multivariate_normal.logpdf(yc, mean=np.zeros(n), cov=F @ F.T/alpha + np.eye(n)/beta)
        fits = [minimize(neg_log_evidence, x0, method='L-BFGS-B', bounds=[(-12, 30), (-8, 8)],
                         options=dict(ftol=1e-15, gtol=1e-10, maxiter=2000))
                for x0 in ([0., 0.], [3., 1.], [-3., 2.])]
        out.append(-min(fit.fun for fit in fits)/n)
    return float(np.mean(out))


@pytest.mark.parametrize('n,d,signal', [(60, 5, 1.0), (60, 5, 0.0), (40, 12, 2.0), (25, 40, 1.0)])
def test_logme_matches_direct_maximisation_of_the_evidence(n, d, signal):
    g = np.random.default_rng(n + d)
    F = g.normal(size=(n, d))
    y = (signal*(F @ g.normal(size=(d, 3))) + g.normal(size=(n, 3))).argmax(1)
    assert logme(F, y) == pytest.approx(_reference_logme(F, y), abs=1e-4)


def test_logme_scale_invariant_and_tensor_input():
    g = np.random.default_rng(1)
    F = g.normal(size=(80, 6)); y = g.integers(0, 3, 80)
    assert logme(1e-3*F, y) == pytest.approx(logme(F, y), abs=1e-9)
    assert logme(torch.tensor(F, dtype=torch.float64), torch.tensor(y)) == pytest.approx(logme(F, y), abs=1e-12)


def test_rank_correlation_matches_scipy():
    acc = [0.55, 0.61, 0.70, 0.74, 0.90]
    same = rank_correlation([1, 2, 3, 4, 5], acc)
    rev = rank_correlation(torch.tensor([5., 4., 3., 2., 1.]), np.array(acc))
    assert (same.tau, same.weighted_tau) == pytest.approx((1.0, 1.0), abs=1e-12)
    assert (rev.tau, rev.weighted_tau) == pytest.approx((-1.0, -1.0), abs=1e-12)
    s = [0.3, -1.0, 2.0, 0.1, 0.5]
    r = rank_correlation(s, acc)
    assert r.tau == pytest.approx(kendalltau(s, acc).statistic) and r.p_value == pytest.approx(kendalltau(s, acc).pvalue)
    assert r.weighted_tau == pytest.approx(weightedtau(s, acc).statistic)


P = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
Y = np.array([0, 1, 1])
F = np.random.default_rng(0).normal(size=(3, 4))

BAD = {   # case: (call, error type, words the message must contain)
    'feats/labels length mismatch': (lambda: logme(F, Y[:2]), ValueError, 'one label per row'),
    'probs/labels length mismatch': (lambda: leep(P, np.array([0, 1])), ValueError, 'one label per row'),
    'src_labels/labels length mismatch': (lambda: nce([0, 1, 1, 0], Y), ValueError, 'one label per row'),
    'NaN features': (lambda: h_score(np.where(F > 0, np.nan, F), Y), ValueError, 'NaN or infinite'),
    'inf probs': (lambda: leep(np.array([[np.inf, 0], [0.2, 0.8], [0.5, 0.5]]), Y), ValueError, 'NaN or infinite'),
    'logits for probs (negative)': (lambda: leep(np.log(P), Y), ValueError, 'pass softmax outputs, not logits'),
    'rows not summing to 1': (lambda: leep(2*P, Y), ValueError, 'pass softmax outputs, not logits'),
    'float labels': (lambda: logme(F, Y.astype(float)), TypeError, 'integer class indices'),
    'float tensor labels': (lambda: h_score(F, torch.tensor([0., 1., 1.])), TypeError, '.long()'),
    'float source labels': (lambda: nce(np.array([0., 1., 1.]), Y), TypeError, 'integer class indices'),
    'negative labels': (lambda: h_score(F, np.array([0, -1, 1])), ValueError, 'negative class index'),
    'one class present': (lambda: logme(F, np.array([2, 2, 2])), ValueError, 'at least 2 classes'),
    'one class present (nce)': (lambda: nce([0, 1, 2], [1, 1, 1]), ValueError, 'at least 2 classes'),
    'one sample': (lambda: h_score(F[:1], Y[:1]), ValueError, 'at least 2 samples'),
    'one sample (nce)': (lambda: nce([0], [0]), ValueError, 'at least 2'),
    '1-d features': (lambda: logme(F[:, 0], Y), ValueError, '[n, d]'),
    'not an array': (lambda: h_score('features', Y), TypeError, 'torch tensor or a NumPy array'),
    'two sources': (lambda: rank_correlation([0.1, 0.2], [0.5, 0.6]), ValueError, 'at least 3'),
    'scores/accuracies length mismatch': (lambda: rank_correlation([1, 2, 3], [0.5, 0.6]), ValueError, 'one of each per source'),
    'NaN accuracy': (lambda: rank_correlation([1, 2, 3], [0.5, np.nan, 0.7]), ValueError, 'NaN or inf'),
    'constant scores': (lambda: rank_correlation([1, 1, 1], [0.5, 0.6, 0.7]), ValueError, 'no order'),
}

@pytest.mark.parametrize('case', list(BAD))
def test_bad_input_is_named(case):
    call, kind, words = BAD[case]
    with pytest.raises(kind) as e: call()
    assert words in str(e.value), str(e.value)


# --- rank_sources: LogME ranking with a subsampling confidence --------------------------------------------------
from tltutor.transferability import rank_sources


def _candidates(seed=0, n=200, k=4):
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n//k)
    signal = g.normal(size=(n, 8)); signal[:, :k] += 3*np.eye(k)[y]          # the class is linearly readable
    weak = g.normal(size=(n, 8)); weak[:, :k] += 0.7*np.eye(k)[y]
    return {'noise': g.normal(size=(n, 8)), 'weak': weak, 'signal': signal}, y


def test_rank_sources_orders_by_logme_and_is_confident_when_the_gap_is_large():
    c, y = _candidates()
    r = rank_sources(c, y, reference='noise', n_subsamples=40)
    assert r.names == ('signal', 'weak', 'noise') and r.top == 'signal'
    assert list(r.scores) == sorted(r.scores, reverse=True)
    assert r.scores[0] == pytest.approx(logme(c['signal'], y))               # the full-data score, not a subsample's
    assert r.p_best == 1.0 and r.p_beats_reference == 1.0 and r.n_subsamples == 40
    assert 'signal' in repr(r) and '(reference)' in repr(r)


def test_rank_sources_is_unsure_between_equal_candidates_and_seeded():
    g = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 60)
    c = {k: g.normal(size=(180, 6)) + np.c_[0.8*np.eye(3)[y], np.zeros((180, 3))] for k in 'ab'}   # equally informative
    r1, r2 = rank_sources(c, y, n_subsamples=30, seed=5), rank_sources(c, y, n_subsamples=30, seed=5)
    assert r1 == r2                                                          # the seed fixes the subsamples
    assert 0 < r1.p_best < 1 and r1.reference is None and r1.p_beats_reference is None


def test_rank_sources_reference_is_skipped_for_top():
    c, y = _candidates()
    c['noise'] = c['signal'] * 2.0                                           # the reference now scores highest (scale-invariant LogME ties)
    r = rank_sources({'ref': c['signal'], 'weak': c['weak']}, y, reference='ref', n_subsamples=10)
    assert r.names[0] == 'ref' and r.top == 'weak' and r.p_beats_reference == 0.0


@pytest.mark.parametrize('call,kind,words', [
    (lambda c, y: rank_sources([c['noise']], y), TypeError, 'at least two candidates'),
    (lambda c, y: rank_sources({'a': c['noise']}, y), TypeError, 'at least two candidates'),
    (lambda c, y: rank_sources({'a': c['noise'], 'b': c['weak'][:50]}, y), ValueError, 'same labelled target inputs'),
    (lambda c, y: rank_sources(c, y, reference='scratch'), ValueError, 'not one of the candidates'),
    (lambda c, y: rank_sources(c, y, n_subsamples=-1), ValueError, 'n_subsamples'),
    (lambda c, y: rank_sources(c, y.astype(float)), TypeError, 'integer class indices'),
])
def test_rank_sources_bad_input_is_named(call, kind, words):
    c, y = _candidates()
    with pytest.raises(kind) as e: call(c, y)
    assert words in str(e.value), str(e.value)

"""Tests of tltutor.instance: importance weights (a known density ratio, clipping, normalisation), the effective
sample size, the covariate-shift split, TrAdaBoost on real data, and bad inputs."""
import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from tltutor.instance import TrAdaBoost, covariate_shift_split, effective_sample_size, importance_weights


@pytest.fixture(scope='module')
def gauss():
    rng = np.random.default_rng(0)
    return rng.normal(0, 1, (1500, 1)), rng.normal(1, 1, (1500, 1))


@pytest.fixture(scope='module')
def shifted():
    "Breast cancer split by mean radius: source (mostly small tumours), unlabelled target, target test; standardised."
    X, y = load_breast_cancer(return_X_y=True)
    src, tgt = covariate_shift_split(X[:, 0], strength=2.0, seed=0)
    tgt = np.random.default_rng(0).permutation(tgt)
    unl, test = tgt[:len(tgt)//2], tgt[len(tgt)//2:]
    sc = StandardScaler().fit(X[np.r_[src, unl]])
    return sc.transform(X[src]), y[src], sc.transform(X[unl]), y[unl], sc.transform(X[test]), y[test]


# --- importance_weights / effective_sample_size ------------------------------------------------------

def test_weights_recover_a_known_density_ratio(gauss):
    xs, xt = gauss
    w = importance_weights(xs, xt, C=10.0, clip=None)
    slope, _ = np.polyfit(xs[:, 0], np.log(w), 1)          # true log-ratio: x − 1/2
    assert abs(slope - 1) < 0.12
    assert w.shape == (len(xs),) and w.mean() == pytest.approx(1.0) and (w > 0).all()


def test_clipping_caps_the_weights_and_raises_the_ess(gauss):
    xs, xt = gauss
    free, clipped = importance_weights(xs, xt, C=10.0, clip=None), importance_weights(xs, xt, C=10.0, clip=2.0)
    assert free.max() > 3 and clipped.max() <= 2.0 + 1e-6 and clipped.mean() == pytest.approx(1.0)
    assert effective_sample_size(clipped) > effective_sample_size(free)
    # the order of the examples is kept: clipping only flattens the top
    top = free < np.quantile(free, 0.5)
    assert np.corrcoef(free[top], clipped[top])[0, 1] > 0.99


def test_same_distribution_gives_nearly_equal_weights(gauss):
    xs, _ = gauss
    w = importance_weights(xs[:750], xs[750:], C=0.1)
    assert effective_sample_size(w) > 0.95*len(w)


def test_ess_values():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size([0, 0, 3.0]) == pytest.approx(1)
    assert effective_sample_size([4, 1, 1, 1, 1]) == pytest.approx(3.2)
    assert effective_sample_size(np.full(7, 0.3)) == pytest.approx(7)           # scale-free


@pytest.mark.parametrize('kwargs, msg', [(dict(C=0), 'C=0'), (dict(C=-1.0), 'C=-1'), (dict(C=True), 'C=True'),
                                         (dict(clip=1), 'clip=1'), (dict(clip=0.5), 'clip=0.5'), (dict(clip='10'), "clip='10'")])
def test_weights_bad_arguments(gauss, kwargs, msg):
    xs, xt = gauss
    with pytest.raises(ValueError, match=msg): importance_weights(xs, xt, **kwargs)


def test_weights_bad_data(gauss):
    xs, xt = gauss
    with pytest.raises(ValueError, match='features'): importance_weights(xs, np.c_[xt, xt])
    with pytest.raises(ValueError, match='NaN'): importance_weights(np.r_[xs, [[np.nan]]], xt)
    with pytest.raises(ValueError, match='at least 2'): importance_weights(xs[:1], xt)


@pytest.mark.parametrize('w, msg', [([], 'non-empty'), (np.ones((2, 2)), '1-d'), ([1.0, -0.5], '>= 0'),
                                    ([1.0, np.nan], '>= 0'), ([0.0, 0.0], 'every weight is 0')])
def test_ess_bad_inputs(w, msg):
    with pytest.raises(ValueError, match=msg): effective_sample_size(w)


# --- covariate_shift_split ---------------------------------------------------------------------------

def test_split_is_a_shifted_partition():
    X, _ = load_breast_cancer(return_X_y=True)
    s, t = covariate_shift_split(X[:, 0], strength=2.0, seed=3)
    assert np.array_equal(np.sort(np.r_[s, t]), np.arange(len(X)))
    assert X[t, 0].mean() > X[s, 0].mean() + 3                      # target tumours are larger (mean radius, mm)
    s2, _ = covariate_shift_split(X[:, 0], strength=2.0, seed=3)
    assert np.array_equal(s, s2)


@pytest.mark.parametrize('feature, kwargs, msg', [(np.ones(10), {}, 'constant'), (np.ones((5, 2)), {}, '1-d'),
                                                  ([1.0, 2.0], {}, 'at least 4'), (np.arange(10.0), dict(strength=-1), 'strength=-1')])
def test_split_bad_inputs(feature, kwargs, msg):
    with pytest.raises(ValueError, match=msg): covariate_shift_split(feature, **kwargs)


# --- importance weighting on real data -----------------------------------------------------------------

def test_weighting_helps_a_biased_model_under_covariate_shift(shifted):
    Xs, ys, Xu, _, Xte, yte = shifted
    w = importance_weights(Xs, Xu)
    assert w.mean() == pytest.approx(1.0) and effective_sample_size(w) < 0.6*len(w)
    lr = lambda: LogisticRegression(C=0.01, max_iter=2000)
    plain, weighted = lr().fit(Xs, ys).score(Xte, yte), lr().fit(Xs, ys, sample_weight=w).score(Xte, yte)
    assert weighted > plain + 0.03


# --- TrAdaBoost ----------------------------------------------------------------------------------------

def _labels(y, k, idx, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(idx[y[idx] == c], k, replace=False) for c in (0, 1)])


def test_tradaboost_follows_the_paper(shifted):
    Xs, ys, Xu, yu, Xte, yte = shifted
    lab = _labels(yu, 10, np.arange(len(yu)))
    tb = TrAdaBoost(n_estimators=10).fit(Xs, ys, Xu[lab], yu[lab])
    assert tb.beta_ == pytest.approx(1/(1 + math.sqrt(2*math.log(len(Xs))/10)))
    assert len(tb.estimators_) == len(tb.errors_) == len(tb.betas_) == len(tb.src_share_) == 10
    assert all(1e-10 <= e <= 0.499 for e in tb.errors_)
    assert tb.betas_ == pytest.approx([e/(1 - e) for e in tb.errors_])
    assert tb.src_share_[0] == pytest.approx(len(Xs)/(len(Xs) + len(lab)))
    assert all(b <= a + 1e-12 for a, b in zip(tb.src_share_, tb.src_share_[1:]))   # the source only loses weight
    p = tb.predict(Xte)
    assert set(np.unique(p)) <= set(tb.classes_) and tb.score(Xte, yte) == pytest.approx((p == yte).mean())
    assert tb.score(Xte, yte) > 0.85


def test_tradaboost_vote_uses_the_second_half(shifted):
    Xs, ys, Xu, yu, Xte, _ = shifted
    lab = _labels(yu, 10, np.arange(len(yu)))
    tb = TrAdaBoost(DecisionTreeClassifier(max_depth=1), n_estimators=6).fit(Xs, ys, Xu[lab], yu[lab])
    a = np.log(1/np.array(tb.betas_[2:]))                                           # rounds 3..6
    votes = sum(ai*h.predict(Xte) for ai, h in zip(a, tb.estimators_[2:]))
    assert np.allclose(tb.decision_function(Xte), votes/a.sum() - 0.5)


def test_tradaboost_keeps_string_labels():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X); names = np.where(y == 1, 'benign', 'malignant')
    tb = TrAdaBoost(n_estimators=4).fit(X[:300], names[:300], X[300:340], names[300:340])
    assert set(tb.predict(X[400:])) <= {'benign', 'malignant'} and tb.score(X[400:], names[400:]) > 0.85


def test_tradaboost_bad_inputs(shifted):
    Xs, ys, Xu, yu, _, _ = shifted
    for n in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match='n_estimators'): TrAdaBoost(n_estimators=n)
    with pytest.raises(TypeError, match='sample_weight'): TrAdaBoost(KNeighborsClassifier()).fit(Xs, ys, Xu, yu)
    Xw, yw = load_wine(return_X_y=True)
    with pytest.raises(ValueError, match='two-class'): TrAdaBoost().fit(Xw[:100], yw[:100], Xw[100:], yw[100:])
    with pytest.raises(ValueError, match='features'): TrAdaBoost().fit(Xs, ys, Xu[:, :5], yu)
    with pytest.raises(ValueError, match='one label per row'): TrAdaBoost().fit(Xs, ys[:-1], Xu, yu)
    with pytest.raises(ValueError, match='not fitted'): TrAdaBoost().predict(Xu)

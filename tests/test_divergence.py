"""Property-based tests of the divergences (hypothesis) and their error messages."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from tltutor.divergence import coral_loss, mmd_loss, proxy_a_distance

def batch(seed, n, d, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g)*scale + shift

dims = st.integers(1, 16)
sizes = st.integers(2, 40)
seeds = st.integers(0, 10_000)

@settings(max_examples=40, deadline=None)
@given(seeds, sizes, dims)
def test_zero_for_identical_batches(seed, n, d):
    x = batch(seed, n, d)
    assert mmd_loss(x, x).item() == pytest.approx(0, abs=1e-5)
    assert coral_loss(x, x).item() == pytest.approx(0, abs=1e-7)

@settings(max_examples=40, deadline=None)
@given(seeds, seeds, sizes, sizes, dims, st.floats(-3, 3), st.floats(0.2, 3))
def test_non_negative_and_symmetric(s1, s2, n1, n2, d, shift, scale):
    a, b = batch(s1, n1, d), batch(s2, n2, d, shift, scale)
    m_ab, m_ba = mmd_loss(a, b).item(), mmd_loss(b, a).item()
    c_ab, c_ba = coral_loss(a, b).item(), coral_loss(b, a).item()
    assert m_ab >= 0 and c_ab >= 0
    assert m_ab == pytest.approx(m_ba, rel=1e-4, abs=1e-5) and c_ab == pytest.approx(c_ba, rel=1e-4, abs=1e-7)

@settings(max_examples=20, deadline=None)
@given(seeds, st.integers(1, 8))
def test_mmd_grows_with_shift(seed, d):
    a, b = batch(seed, 64, d), batch(seed + 1, 64, d)
    assert mmd_loss(a, b + 2.0) > mmd_loss(a, b)

def test_losses_are_differentiable():
    a = batch(0, 16, 4).requires_grad_()
    (mmd_loss(a, batch(1, 16, 4, 1.0)) + coral_loss(a, batch(2, 16, 4, 0, 2.0))).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0

@pytest.mark.parametrize('fn', [mmd_loss, coral_loss])
def test_clear_errors(fn):
    with pytest.raises(ValueError, match='same feature extractor'): fn(batch(0, 8, 3), batch(0, 8, 4))
    with pytest.raises(ValueError, match=r'features \[n, d\]'): fn(torch.zeros(8), torch.zeros(8))
    with pytest.raises(TypeError, match='torch.Tensor'): fn(np.zeros((8, 3)), batch(0, 8, 3))
    with pytest.raises(ValueError, match='at least 2'): coral_loss(batch(0, 1, 3), batch(0, 8, 3))

def test_proxy_a_distance_orders_domains():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    near, far = proxy_a_distance(x, rng.normal(size=(300, 5))), proxy_a_distance(x, rng.normal(size=(300, 5)) + 2)
    assert 0 <= near < 0.4 < 1.6 < far <= 2
    with pytest.raises(ValueError, match='same feature extractor'): proxy_a_distance(x, x[:, :3])

import os
from unittest.mock import patch

import pytest
import torch

from tltutor.core import get_device, get_scale, scaled, set_seed, home_dir, assets_dir


@pytest.mark.parametrize('value,want', [('quick', 'quick'), ('full', 'full'), (' FULL ', 'full')])
def test_scale_from_env(value, want):
    with patch.dict(os.environ, {'TLTUTOR_SCALE': value}): assert get_scale() == want


def test_scale_default_follows_cuda():
    env = {k: v for k, v in os.environ.items() if k != 'TLTUTOR_SCALE'}
    with patch.dict(os.environ, env, clear=True):
        assert get_scale() == ('full' if torch.cuda.is_available() else 'quick')


def test_bad_scale_names_the_fix():
    with patch.dict(os.environ, {'TLTUTOR_SCALE': 'medium'}):
        with pytest.raises(ValueError, match=r"TLTUTOR_SCALE='medium'.*quick"): get_scale()


def test_scaled():
    with patch.dict(os.environ, {'TLTUTOR_SCALE': 'quick'}): assert scaled(1, 2) == 1
    with patch.dict(os.environ, {'TLTUTOR_SCALE': 'full'}): assert scaled(1, 2) == 2


def test_device():
    assert get_device('cpu').type == 'cpu'
    with patch.dict(os.environ, {'TLTUTOR_DEVICE': 'cpu'}): assert get_device().type == 'cpu'
    with pytest.raises(ValueError, match='not a device'): get_device('gpu0')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cpu'"): get_device('cuda')


def test_set_seed_repeats_runs():
    set_seed(3); a = (torch.rand(4), torch.randn(2))
    set_seed(3); b = (torch.rand(4), torch.randn(2))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError, match='non-negative integer'): set_seed(1.5)


def test_paths():
    with patch.dict(os.environ, {'TLTUTOR_HOME': '/x/y'}):
        assert str(home_dir()) == '/x/y' and str(assets_dir()) == '/x/y/assets'

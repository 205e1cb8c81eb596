import os
from unittest.mock import patch

import numpy as np
import pytest
import torch

from tltutor import data
from tltutor.data import (AssetChecksumError, AssetMissingError, asset_path, blend_mnistm, check_assets, few_shot,
                          load_digits, load_mnist, load_text_domain, load_vader, make_domain_pair, shift_images,
                          split_indices, tensor_loader)


def test_required_assets_present_and_verified():
    rows = {n: s for n, s, _ in check_assets()}
    for name in ['mobilenet_v2', 'minilm', 'glove', 'mnist', 'vader', 'rotten_tomatoes']: assert rows[name] == 'ok', name


def test_missing_asset_says_how_to_fetch(tmp_path):
    with patch.dict(os.environ, {'TLTUTOR_HOME': str(tmp_path)}):
        with pytest.raises(AssetMissingError, match='bash scripts/course.sh setup'): asset_path('rotten_tomatoes')


def test_corrupt_asset_is_detected(tmp_path):
    (tmp_path/'assets'/'rotten_tomatoes').mkdir(parents=True)
    (tmp_path/'assets'/'rotten_tomatoes'/'rotten_tomatoes_corpus_full.csv.bz2').write_bytes(b'not the data')
    with patch.dict(os.environ, {'TLTUTOR_HOME': str(tmp_path)}):
        with pytest.raises(AssetChecksumError, match='Delete it and run'): asset_path('rotten_tomatoes')


def test_unknown_asset():
    with pytest.raises(ValueError, match='choose one of'): asset_path('resnet50')


def test_mnist_is_shuffled_and_balanced():
    x, y = load_mnist()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert np.bincount(y.numpy()).tolist() == [500]*10
    assert len(set(y[:50].tolist())) >= 8


def test_digits_and_domains():
    x, y = load_digits(size=32)
    assert x.shape == (1797, 1, 32, 32) and 0 <= x.min() and x.max() <= 1
    p = make_domain_pair('mnist', 'mnistm', n_src=50, n_tgt=40)
    assert p.src_x.shape == (50, 3, 28, 28) and p.tgt_x.shape == (40, 3, 28, 28)
    # disjoint halves of the MNIST sample: no target image is a source image
    full = make_domain_pair('mnist', 'mnistm', shift=0.0)
    s = {tuple(v) for v in full.src_x[:, 0].flatten(1)[:, ::7].numpy().round(3).tolist()}
    assert not any(tuple(v) in s for v in full.tgt_x[:200, 0].flatten(1)[:, ::7].numpy().round(3).tolist())


def test_shift_is_monotone_in_strength():
    x, _ = load_mnist()
    d = [float((shift_images(x[:64], s, seed=0) - shift_images(x[:64], 0)).abs().mean()) for s in (0, .25, .5, 1)]
    assert d[0] == 0 and d[0] < d[1] < d[2] < d[3]
    with pytest.raises(ValueError, match='grey images'): blend_mnistm(torch.rand(2, 3, 28, 28))


def test_splits_and_few_shot():
    y = np.repeat(np.arange(4), 25)
    tr, va, te = split_indices(y, val=0.2, test=0.2)
    assert len(set(tr) | set(va) | set(te)) == 100 and not (set(tr) & set(te))
    fs = few_shot(y, 3, idx=tr, seed=1)
    assert np.bincount(y[fs]).tolist() == [3]*4 and set(fs) <= set(tr)
    assert not np.array_equal(fs, few_shot(y, 3, idx=tr, seed=2))
    with pytest.raises(ValueError, match='at least 1'): few_shot(y, 0)
    with pytest.raises(ValueError, match='val \\+ test < 1'): split_indices(y, val=0.5, test=0.5)
    with pytest.raises(ValueError, match='non-empty'): split_indices([])


def test_splits_by_count():
    y = np.repeat(np.arange(4), 25)
    tr, va, te = split_indices(y, val=12, test=20, seed=3)
    assert (len(tr), len(va), len(te)) == (68, 12, 20) and np.bincount(y[te]).tolist() == [5]*4
    same = split_indices(y, val=0, test=0.2, seed=3)[2]                  # 20 rows as a fraction or a count: one split
    assert np.array_equal(split_indices(y, val=0, test=20, seed=3)[2], same)
    with pytest.raises(ValueError, match='leave some for training'): split_indices(y, val=0, test=100)
    with pytest.raises(ValueError, match='below 1'): split_indices(y, val=0, test=2.0)
    with pytest.raises(ValueError, match='number of rows'): split_indices(y, val=-3)
    with patch.dict(os.environ, {'TLTUTOR_SMOKE': '1'}):                # smoke mode: a full-scale count on capped data
        assert len(split_indices(y, val=0, test=2000)[2]) == 25            # at most a quarter of the rows


def test_tensor_loader_errors():
    with pytest.raises(ValueError, match='must match'): tensor_loader(torch.zeros(3, 2), torch.zeros(4))


def test_text_domains():
    movie = load_vader('movie')
    assert set(movie.column_names) == {'text', 'score', 'label'} and len(movie) > 3000
    assert all(abs(s) >= 0.5 for s in movie['score'][:500])
    rt = load_text_domain('rotten_tomatoes')
    rt_texts = {data._norm_text(t) for t in rt['text']}
    assert not any(data._norm_text(t) in rt_texts for t in movie['text'])   # leak removed
    with pytest.raises(ValueError, match='unknown VADER domain'): load_vader('reddit')

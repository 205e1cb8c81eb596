"""Bad input to public functions: each raises an error that names the problem and the fix.

`CASES` is the table; nbs/99_reliability.ipynb renders it as documentation and runs it too."""
import os
from unittest.mock import patch

import pytest
import torch
import torch.nn as nn

from tltutor import core, data, divergence, models, train

def _tiny(n_out=2): return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, n_out))
def _xy(n=8, k=2): return torch.randn(n, 4), torch.arange(n) % k
def _loader(n=8, k=2, bad=False):
    x, y = _xy(n, k)
    if bad: x[0] = float('nan')
    return data.tensor_loader(x, y, bs=4)

def _env(**kw): return patch.dict(os.environ, kw)
def _with_env(f, **kw):
    def g():
        with _env(**kw): return f()
    return g

def _missing_asset():
    with _env(TLTUTOR_HOME='/nonexistent/tltutor-home'): data.asset_path('vader')

def _corrupt_asset(tmp='/tmp/tltutor-bad-input-test'):
    d = os.path.join(tmp, 'assets', 'rotten_tomatoes'); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, 'rotten_tomatoes_corpus_full.csv.bz2'), 'wb').write(b'garbage')
    with _env(TLTUTOR_HOME=tmp): data.asset_path('rotten_tomatoes')

def _corrupt_checkpoint(path='/tmp/tltutor-bad-input-test/broken.pt'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'wb').write(b'this is not a checkpoint')
    train.load_checkpoint(_tiny(), path)

def _checkpoint_for_other_model(path='/tmp/tltutor-bad-input-test/two-class.pt'):
    train.save_checkpoint(_tiny(2), path)
    train.load_checkpoint(_tiny(3), path)

def _text_loader_without_labels():
    from datasets import Dataset
    data.text_loader(Dataset.from_dict({'text': ['good', 'bad']}), tokenizer=None)

# (what is wrong, the call, the exception, a fragment the message must contain)
CASES = [
    ('scale switch set to an unknown value', _with_env(core.get_scale, TLTUTOR_SCALE='medium'), ValueError, "one of ('quick', 'full')"),
    ('unknown device name', lambda: core.get_device('tpu'), ValueError, "use 'cpu', 'cuda'"),
    ('negative seed', lambda: core.set_seed(-3), ValueError, 'non-negative integer'),
    ('unknown asset name', lambda: data.asset_path('resnet50'), ValueError, 'choose one of'),
    ('asset not fetched yet', _missing_asset, data.AssetMissingError, 'bash scripts/course.sh setup'),
    ('corrupt asset file', _corrupt_asset, data.AssetChecksumError, 'Delete it and run'),
    ('unknown image domain', lambda: data.make_domain_pair('mnist', 'svhn'), ValueError, 'choose one of'),
    ('shift strength outside [0, 1]', lambda: data.shift_images(torch.rand(2, 1, 28, 28), 1.5), ValueError, 'must be in [0, 1]'),
    ('shift asked for a target it does not apply to', lambda: data.make_domain_pair('mnist', 'digits', shift=.5), ValueError, "only applies to tgt='mnistm'"),
    ('more shots than a class has', lambda: data.few_shot([0, 0, 1, 1], 3), ValueError, 'ask for at most 2'),
    ('empty dataset', lambda: data.tensor_loader(torch.zeros(0, 4), torch.zeros(0)), ValueError, 'empty dataset'),
    ('inputs and labels of different lengths', lambda: data.tensor_loader(torch.zeros(5, 4), torch.zeros(4)), ValueError, 'must match'),
    ('split fractions that do not fit', lambda: data.split_indices([0, 1] * 10, val=.6, test=.5), ValueError, 'val + test < 1'),
    ('unknown sentiment domain', lambda: data.load_vader('reddit'), ValueError, 'choose one of'),
    ('text dataset without labels', _text_loader_without_labels, ValueError, "lacks columns ['label']"),
    ('images of the wrong shape', lambda: models.ImageNetInput(32)(torch.rand(2, 28, 28)), ValueError, 'expected images [B,1,H,W]'),
    ('a head with fewer than 2 classes', lambda: models.replace_head(_tiny(), 1), ValueError, 'integer >= 2'),
    ('freezing more layer groups than exist', lambda: models.freeze_bottom(_tiny(), 9), ValueError, 'freeze between 0 and'),
    ('lowest learning rate above the top one', lambda: models.param_groups(_tiny(), 1e-3, lowest_lr=1e-2), ValueError, 'must be > 0 and <= lr'),
    ('one string where a list of sentences is expected', lambda: models.embed_texts('hello'), TypeError, 'wrap it in [...]'),
    ("head's class count does not match the labels", lambda: train.fit(_tiny(2), _loader(k=3), epochs=1, progress=False), ValueError, 'replace_head'),
    ('zero epochs', lambda: train.fit(_tiny(), _loader(), epochs=0), ValueError, 'at least 1 epoch'),
    ('NaN loss during training', lambda: train.fit(_tiny(), _loader(bad=True), epochs=1, progress=False), FloatingPointError, 'lower the learning rate'),
    ('every parameter frozen', lambda: train.fit(_tiny().requires_grad_(False), _loader(), epochs=1), ValueError, 'no trainable parameters'),
    ('unknown mixed-precision mode', lambda: train.fit(_tiny(), _loader(), epochs=1, amp='int8'), ValueError, "'bf16' or 'fp16'"),
    ('a batch that is neither (x, y) nor a dict', lambda: train.split_batch(torch.ones(3), 'cpu'), TypeError, "dict with 'labels'"),
    ('source and target features of different sizes', lambda: divergence.mmd_loss(torch.rand(8, 3), torch.rand(8, 4)), ValueError, 'same feature extractor'),
    ('a batch too small for a covariance', lambda: divergence.coral_loss(torch.rand(1, 3), torch.rand(8, 3)), ValueError, 'at least 2'),
    ('corrupt checkpoint file', _corrupt_checkpoint, ValueError, 'corrupt or truncated'),
    ('checkpoint of a different model', _checkpoint_for_other_model, ValueError, 'does not fit this model'),
    ('missing checkpoint', lambda: train.load_checkpoint(_tiny(), '/nonexistent/model.pt'), FileNotFoundError, 'save one with save_checkpoint'),
]
# (asking for a GPU on a machine without one is tested in test_core.py: the answer depends on the machine)


@pytest.mark.parametrize('what,call,exc,fragment', CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_problem_and_fix(what, call, exc, fragment):
    with pytest.raises(exc) as e: call()
    assert fragment in str(e.value), f"{what}: message lacks {fragment!r}: {e.value}"


def test_table_is_big_enough():
    assert len(CASES) >= 20

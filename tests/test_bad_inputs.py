"""Bad input to public functions: each raises an error that names the problem and the fix.

`CASES` is the table; nbs/99_reliability.ipynb renders it as documentation and runs it too."""
import os
from unittest.mock import patch

import pytest
import torch
import torch.nn as nn

import numpy as np

from tltutor import core, data, divergence, models, taxonomy, train, transferability as tf

def _tiny(n_out=2): return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, n_out))
def _xy(n=8, k=2): return torch.randn(n, 4), torch.arange(n) % k
def _loader(n=8, k=2, bad=False):
    x, y = _xy(n, k)
    if bad: x[0] = float('nan')
    return data.tensor_loader(x, y, bs=4)

def _feats(n=6, d=3):
    "Fixed features [n, d] for the transferability doors (fixed, so that the messages 99_reliability stores are too)."
    return np.arange(n*d, dtype=float).reshape(n, d) % 5

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

def _damaged_checkpoint(path='/tmp/tltutor-bad-input-test/damaged.pt'):
    "A checkpoint with 64 bytes zeroed in the middle of its weights: it still unpickles, but the weights differ."
    m = nn.Linear(256, 256)
    train.save_checkpoint(m, path)
    raw = bytearray(open(path, 'rb').read()); mid = len(raw)//2
    raw[mid:mid + 64] = bytes(64)
    open(path, 'wb').write(bytes(raw))
    train.load_checkpoint(nn.Linear(256, 256), path)

def _checkpoint_for_other_model(path='/tmp/tltutor-bad-input-test/two-class.pt'):
    train.save_checkpoint(_tiny(2), path)
    train.load_checkpoint(_tiny(3), path)

def _fit_with_labels(labels):
    "fit (one epoch) of a tiny two-class model on labels transformed by `labels`."
    x, y = _xy()
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, labels(y)), batch_size=4)
    return lambda: train.fit(_tiny(), dl, epochs=1, progress=False)

def _fit_small_cnn_on(x):
    "fit of lesson 03's 1-channel, 16 px small CNN on images `x` [8, C, H, W]."
    from tltutor.models import small_cnn
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(8) % 2), batch_size=8)
    return lambda: train.fit(small_cnn(in_channels=1), dl, epochs=1, progress=False)

def _with_value(shape, row, value):
    "Random features of `shape` with one entry set to `value` (NaN, inf)."
    t = torch.randn(*shape); t[row, 0] = value
    return t

def _minilm_on(ids):
    "The packaged MiniLM encoder, through fit's forward step, on one batch of token ids."
    return lambda: train.forward(models.load_text_model(), {'input_ids': ids, 'attention_mask': torch.ones_like(ids)})

def _text_loader_without_labels():
    from datasets import Dataset
    data.text_loader(Dataset.from_dict({'text': ['good', 'bad']}), tokenizer=None)

def _unlabelled_target_task(src_labels, tgt_labels):
    "classify_setting of photos → sketches, labelled source, unlabelled target, with these two label spaces."
    P = taxonomy.TransferProblem(taxonomy.Domain('RGB image', 'photos'), taxonomy.Task(src_labels),
                                 taxonomy.Domain('RGB image', 'sketches'), taxonomy.Task(tgt_labels), True, False)
    return lambda: taxonomy.classify_setting(P)

def _recommend_with_labels(n):
    "recommend_strategy with `n` target labels for a problem whose target has none."
    return lambda: taxonomy.recommend_strategy(n, 'similar', problem=taxonomy.EXAMPLES['MNIST → MNIST-M'])

# (what is wrong, the call, the exception, a fragment the message must contain)
DOORS = {   # each door of the library, in the order a learner meets them, and the bad inputs it refuses
    'settings (tltutor.core)': [
        ('scale switch set to an unknown value', _with_env(core.get_scale, TLTUTOR_SCALE='medium'), ValueError, "one of ('quick', 'full')"),
        ('unknown device name', lambda: core.get_device('tpu'), ValueError, "use 'cpu', 'cuda'"),
        ('negative seed', lambda: core.set_seed(-3), ValueError, 'non-negative integer'),
    ],
    'assets (tltutor.data)': [
        ('unknown asset name', lambda: data.asset_path('resnet50'), ValueError, 'choose one of'),
        ('asset not fetched yet', _missing_asset, data.AssetMissingError, 'bash scripts/course.sh setup'),
        ('corrupt asset file', _corrupt_asset, data.AssetChecksumError, 'Delete it and run'),
    ],
    'datasets, loaders and splits (tltutor.data)': [
        ('unknown image domain', lambda: data.make_domain_pair('mnist', 'svhn'), ValueError, 'choose one of'),
        ('shift strength outside [0, 1]', lambda: data.shift_images(torch.rand(2, 1, 28, 28), 1.5), ValueError, 'must be in [0, 1]'),
        ('shift asked for a target it does not apply to', lambda: data.make_domain_pair('mnist', 'digits', shift=.5), ValueError, "only applies to tgt='mnistm'"),
        ('more shots than a class has', lambda: data.few_shot([0, 0, 1, 1], 3), ValueError, 'ask for at most 2'),
        ('empty dataset', lambda: data.tensor_loader(torch.zeros(0, 4), torch.zeros(0)), ValueError, 'empty dataset'),
        ('inputs and labels of different lengths', lambda: data.tensor_loader(torch.zeros(5, 4), torch.zeros(4)), ValueError, 'must match'),
        ('split fractions that do not fit', lambda: data.split_indices([0, 1] * 10, val=.6, test=.5), ValueError, 'val + test < 1'),
        ('unknown sentiment domain', lambda: data.load_vader('reddit'), ValueError, 'choose one of'),
        ('text dataset without labels', _text_loader_without_labels, ValueError, "lacks columns ['label']"),
        ('a string where tensors are expected', lambda: data.tensor_loader('images', [0, 1]), TypeError, 'must be a torch.Tensor (or a numpy array / list)'),
        ('a stratified split of classes too rare to split', lambda: data.split_indices(torch.tensor([0, 0, 1, 1, 2]), val=.2, test=.2), ValueError, 'the rarest, class 2, has 1'),
    ],
    'models and heads (tltutor.models)': [
        ('images of the wrong shape', lambda: models.ImageNetInput(32)(torch.rand(2, 28, 28)), ValueError, 'expected images [B,1,H,W]'),
        ('uint8 images into an ImageNet model', lambda: models.ImageNetInput(32)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)), TypeError, 'pass x.float()/255'),
        ('a head with fewer than 2 classes', lambda: models.replace_head(_tiny(), 1), ValueError, 'integer >= 2'),
        ('freezing more layer groups than exist', lambda: models.freeze_bottom(_tiny(), 9), ValueError, 'freeze between 0 and'),
        ('lowest learning rate above the top one', lambda: models.param_groups(_tiny(), 1e-3, lowest_lr=1e-2), ValueError, 'must be > 0 and <= lr'),
        ('one string where a list of sentences is expected', lambda: models.embed_texts('hello'), TypeError, 'wrap it in [...]'),
    ],
    'the training loop (tltutor.train: fit, evaluate, forward)': [
        ("head's class count does not match the labels", lambda: train.fit(_tiny(2), _loader(k=3), epochs=1, progress=False), ValueError, 'replace_head'),
        ('zero epochs', lambda: train.fit(_tiny(), _loader(), epochs=0), ValueError, 'at least 1 epoch'),
        ('NaN loss during training', lambda: train.fit(_tiny(), _loader(bad=True), epochs=1, progress=False), FloatingPointError, 'lower the learning rate'),
        ('every parameter frozen', lambda: train.fit(_tiny().requires_grad_(False), _loader(), epochs=1), ValueError, 'no trainable parameters'),
        ('unknown mixed-precision mode', lambda: train.fit(_tiny(), _loader(), epochs=1, amp='int8'), ValueError, "'bf16' or 'fp16'"),
        ('a batch that is neither (x, y) nor a dict', lambda: train.split_batch(torch.ones(3), 'cpu'), TypeError, "dict with 'labels'"),
        ('float labels', _fit_with_labels(lambda y: y.float()), TypeError, 'integer class indices; pass y.long()'),
        ('int32 labels', _fit_with_labels(lambda y: y.int()), TypeError, 'int64 class indices; pass y.long()'),
        ('labels shaped [N, 1]', _fit_with_labels(lambda y: y[:, None]), ValueError, 'pass y.squeeze(1)'),
        ('one-hot labels', _fit_with_labels(lambda y: nn.functional.one_hot(y, 2).float()), TypeError, 'pass y.argmax(1)'),
        ('float labels to evaluate', lambda: train.evaluate(_tiny(), torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_xy()[:1], _xy()[1].float()), batch_size=4)), TypeError, 'pass y.long()'),
        ('3-channel images into a 1-channel CNN', _fit_small_cnn_on(torch.zeros(8, 3, 16, 16)), ValueError, 'inputs of shape (8, 3, 16, 16)'),
        ('28 px images into a CNN built for 16 px', _fit_small_cnn_on(torch.zeros(8, 1, 28, 28)), ValueError, 'the image size (size= / input_size=)'),
        ('uint8 images', _fit_small_cnn_on(torch.zeros(8, 1, 16, 16, dtype=torch.uint8)), TypeError, 'not uint8'),
        ('a token id past the vocabulary', _minilm_on(torch.tensor([[101, 40000, 102]])), ValueError, "past the model's vocabulary of 30522"),
        ('a negative token id', _minilm_on(torch.tensor([[101, -5, 102]])), ValueError, 'token id -5 is negative'),
        ('float token ids', _minilm_on(torch.tensor([[101., 5., 102.]])), TypeError, 'pass input_ids.long()'),
        ('a sequence longer than the model\'s positions', _minilm_on(torch.full((1, 600), 1000)), ValueError, "longer than the model's 512 positions"),
    ],
    'checkpoints (tltutor.train)': [
        ('corrupt checkpoint file', _corrupt_checkpoint, ValueError, 'corrupt or truncated'),
        ('checkpoint damaged after saving', _damaged_checkpoint, ValueError, 'do not match the checksum'),
        ('checkpoint of a different model', _checkpoint_for_other_model, ValueError, 'does not fit this model'),
        ('missing checkpoint', lambda: train.load_checkpoint(_tiny(), '/nonexistent/model.pt'), FileNotFoundError, 'save one with save_checkpoint'),
    ],
    'divergences (tltutor.divergence)': [
        ('source and target features of different sizes', lambda: divergence.mmd_loss(torch.rand(8, 3), torch.rand(8, 4)), ValueError, 'same feature extractor'),
        ('a batch too small for a covariance', lambda: divergence.coral_loss(torch.rand(1, 3), torch.rand(8, 3)), ValueError, 'at least 2'),
        ('NaN in the source features of MMD', lambda: divergence.mmd_loss(_with_value((8, 4), 2, float('nan')), torch.randn(8, 4)), ValueError, 'src holds 1 NaN or infinite'),
        ('infinity in the target features of MMD', lambda: divergence.mmd_loss(torch.randn(8, 4), _with_value((8, 4), 0, float('inf'))), ValueError, 'tgt holds 1 NaN or infinite'),
        ('NaN in the features of CORAL', lambda: divergence.coral_loss(_with_value((8, 4), 1, float('nan')), torch.randn(8, 4)), ValueError, 'NaN or infinite'),
        ('NaN in the features of the proxy A-distance', lambda: divergence.proxy_a_distance(_with_value((60, 4), 0, float('nan')), torch.randn(60, 4)), ValueError, 'src holds 1 NaN'),
    ],
    'transferability scores (tltutor.transferability)': [
        ('float labels to LogME', lambda: tf.logme(np.ones((6, 3)), np.arange(6) % 2 + .0), TypeError, 'pass integer class indices'),
        ('one-hot labels to the H-score', lambda: tf.h_score(_feats(), np.eye(2, dtype=int)[np.arange(6) % 2]), ValueError, 'pass their argmax'),
        ('labels and features of different lengths', lambda: tf.logme(_feats(), np.arange(5) % 2), ValueError, 'one label per row'),
        ('a single target class', lambda: tf.logme(_feats(), np.zeros(6, dtype=int)), ValueError, 'at least 2 classes'),
        ('image-shaped features', lambda: tf.h_score(np.ones((6, 3, 2, 2)), np.arange(6) % 2), ValueError, 'x.reshape(len(x), -1)'),
        ('NaN in the features', lambda: tf.logme(np.where(np.eye(6, 3) > 0, np.nan, 1.), np.arange(6) % 2), ValueError, 'NaN or infinite'),
        ('logits where LEEP wants softmax outputs', lambda: tf.leep(np.arange(24.).reshape(6, 4) - 10, np.arange(6) % 2), ValueError, 'not logits'),
        ('too few candidates to rank', lambda: tf.rank_correlation([1, 2], [.5, .6]), ValueError, 'at least 3'),
        ('a list where rank_sources wants a dict', lambda: tf.rank_sources([_feats()], np.arange(6) % 2), TypeError, 'as a dict'),
        ('a reference that is not a candidate', lambda: tf.rank_sources({'a': _feats(), 'b': _feats()}, np.arange(6) % 2, reference='c'), ValueError, 'is not one of the candidates'),
    ],
    'the taxonomy (tltutor.taxonomy)': [
        ('a description that is not text', lambda: taxonomy.Domain(3, 'photos'), TypeError, 'must be a str that describes it'),
        ('a target task that only adds words to the source\'s', _unlabelled_target_task('10 classes', '10 object classes'), ValueError, 'describe them identically'),
        ('an unlabelled target with a new task (zero-shot)', _unlabelled_target_task('10 digit classes', '{cat, dog}'), ValueError, 'zero-shot learning'),
        ('a label count that contradicts the problem', _recommend_with_labels(50), ValueError, 'n_target_labels=50'),
    ],
}
CASES = [case for cases in DOORS.values() for case in cases]
# (asking for a GPU on a machine without one is tested in test_core.py: the answer depends on the machine)


@pytest.mark.parametrize('what,call,exc,fragment', CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_problem_and_fix(what, call, exc, fragment):
    with pytest.raises(exc) as e: call()
    assert fragment in str(e.value), f"{what}: message lacks {fragment!r}: {e.value}"


def test_table_is_big_enough():
    assert len(CASES) >= 45


# --- inputs that used to fail and now work ------------------------------------------------------------------

def test_tensor_loader_takes_numpy_and_lists():
    import numpy as np
    x, y = next(iter(data.tensor_loader(np.zeros((4, 3)), np.array([0, 1, 0, 1], dtype=np.int32), bs=4)))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (4, 3)
    x, y = next(iter(data.tensor_loader([[0., 1.]]*4, [0, 1, 0, 1], bs=2)))
    assert x.dtype == torch.float32 and y.tolist() == [0, 1] and x.shape == (2, 2)


def test_fit_with_its_own_loss_takes_other_targets():
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4), torch.rand(8, 2)), batch_size=4)
    h = train.fit(_tiny(), dl, epochs=1, progress=False, loss_fn=nn.functional.mse_loss)   # no label check for other losses
    assert 'train_accuracy' not in h.records[0] and h.records[0]['train_loss'] > 0


def test_embed_texts_of_nothing_keeps_the_width():
    assert models.embed_texts([]).shape == (0, 384)


def test_fit_takes_uint8_labels_as_cross_entropy_does():
    x, y = _xy()
    h = train.fit(_tiny(), data.tensor_loader(x, y.to(torch.uint8), bs=4), epochs=1, progress=False)
    assert 0 <= h.records[0]['train_accuracy'] <= 1


def test_checkpoint_round_trip_keeps_weights_and_checksum(tmp_path):
    m = _tiny()
    train.save_checkpoint(m, tmp_path/'m.pt')
    twin = _tiny(); train.load_checkpoint(twin, tmp_path/'m.pt')
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), twin.state_dict().values()))
    state = torch.load(tmp_path/'m.pt', weights_only=True)
    assert state['sha256'] == train._weights_digest(m.state_dict()) and len(state['sha256']) == 64


def test_checkpoint_without_checksum_loads_with_a_warning(tmp_path):
    m = _tiny()
    torch.save({'model': m.state_dict(), 'history': None}, tmp_path/'old.pt')    # the format before checksums
    with pytest.warns(UserWarning, match='no checksum'): train.load_checkpoint(_tiny(), tmp_path/'old.pt')


def test_imagenet_input_warns_once_on_0_255_images():
    import warnings
    prep = models.ImageNetInput(32)
    with pytest.warns(UserWarning, match='divide 0-255 images by 255'): prep(torch.rand(2, 1, 8, 8)*255)
    with warnings.catch_warnings():
        warnings.simplefilter('error'); prep(torch.rand(2, 1, 8, 8)*255)   # the first batch only
        models.ImageNetInput(32)(torch.rand(2, 3, 8, 8))                  # [0, 1] images: no warning

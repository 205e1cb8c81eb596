import pytest
import torch

from tltutor.models import (ImageNetInput, count_params, embed_texts, freeze_bottom, get_head, layer_groups,
                            load_glove, load_text_model, load_tokenizer, mobilenet_v2, param_groups, replace_head)


@pytest.fixture(scope='module')
def mnet(): return mobilenet_v2(num_classes=7, input_size=32)


def test_mobilenet_is_pretrained():
    torch.manual_seed(0)
    a, b = mobilenet_v2(), mobilenet_v2(pretrained=False)
    w = a.net.features[0][0].weight
    assert not torch.allclose(w, b.net.features[0][0].weight)
    # ImageNet first-layer filters are smooth edge detectors: far from a random init's scale
    assert w.abs().max() > 1.0


def test_head_and_freezing(mnet):
    assert get_head(mnet).out_features == 7
    with torch.no_grad(): assert mnet(torch.rand(3, 1, 28, 28)).shape == (3, 7)
    freeze_bottom(mnet, -1); assert count_params(mnet) == 1280*7 + 7
    freeze_bottom(mnet, 0); assert count_params(mnet) == count_params(mnet, trainable=False)
    with pytest.raises(ValueError, match='layer groups'): freeze_bottom(mnet, 99)
    with pytest.raises(ValueError, match='integer >= 2'): replace_head(mnet, 0)


def test_param_groups_are_ordered(mnet):
    freeze_bottom(mnet, 0)
    lrs = [g['lr'] for g in param_groups(mnet, 1e-3, lowest_lr=1e-5)]
    assert lrs == sorted(lrs) and abs(lrs[0] - 1e-5) < 1e-12 and abs(lrs[-1] - 1e-3) < 1e-12
    with pytest.raises(ValueError, match='lowest_lr'): param_groups(mnet, 1e-3, lowest_lr=1e-2)


def test_imagenet_input_checks_shape():
    with pytest.raises(ValueError, match='expected images'): ImageNetInput(32)(torch.rand(2, 2, 8, 8))


def test_minilm_classifier_and_groups():
    m = load_text_model(num_labels=3)
    assert get_head(m).out_features == 3 and len(layer_groups(m)) == 9
    freeze_bottom(m, 8); assert count_params(m) == 384*3 + 3
    with pytest.raises(ValueError, match='integer >= 2'): load_text_model(num_labels=1)


def test_sentence_embeddings_capture_meaning():
    e = embed_texts(['I loved this film', 'a wonderful movie', 'quarterly tax filing deadline'])
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    with pytest.raises(TypeError, match='list of sentences'): embed_texts('one string')


def test_glove():
    g = load_glove()
    assert len(g.words) == 400_000 and g.vectors.shape == (400_000, 50)
    assert 'awful' in g.nearest('terrible', 5, exclude={'terrible'})
    with pytest.raises(KeyError, match='not in the GloVe vocabulary'): g['Zzyzxq']

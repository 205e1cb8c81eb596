"Tests of tltutor.compress on the packaged MiniLM and real Rotten Tomatoes snippets: adapters, LoRA merging, distillation, pruning."
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tltutor.adapters import BottleneckAdapter, add_bottleneck_adapters
from tltutor.compress import distillation_loss, distiller, latency, make_student, model_size, prune_model
from tltutor.core import set_seed
from tltutor.data import few_shot, load_rotten_tomatoes, text_loader
from tltutor.models import count_params, get_head, load_text_model, load_tokenizer
from tltutor.train import fit, forward, split_batch


@pytest.fixture(scope='module')
def tok(): return load_tokenizer()

@pytest.fixture(scope='module')
def teacher():
    set_seed(0)
    return load_text_model(num_labels=2).eval()

@pytest.fixture(scope='module')
def snippets():
    "32 Rotten Tomatoes snippets, 16 per class."
    ds = load_rotten_tomatoes()
    return ds.select(few_shot(np.array(ds['label']), 16, seed=0))

@pytest.fixture(scope='module')
def batch(tok, snippets):
    return tok(snippets['text'][:8], padding=True, truncation=True, max_length=32, return_tensors='pt')

def _logits(model, batch):
    with torch.no_grad(): return model.eval()(**batch).logits


def test_adapter_is_identity_at_init_and_checks_inputs():
    ad = BottleneckAdapter(384, 16)
    h = torch.randn(3, 7, 384)
    assert torch.equal(ad(h), h)
    assert count_params(ad) == 2*384*24 + 384 + 24
    with torch.no_grad(): ad.up.bias.fill_(1.)
    assert torch.allclose(ad(h), h + 1)
    for bad in (dict(dim=0), dict(dim=384.), dict(dim=True)):
        with pytest.raises(ValueError, match='dim='): BottleneckAdapter(**bad)
    for r in (0, 385, 2.5):
        with pytest.raises(ValueError, match='reduction='): BottleneckAdapter(384, r)


def test_adapters_in_minilm_train_only_adapters_and_head(teacher, batch, tok, snippets):
    m = copy.deepcopy(teacher)
    before = _logits(m, batch)
    add_bottleneck_adapters(m, reduction=16)
    assert torch.allclose(_logits(m, batch), before, atol=1e-6)
    assert count_params(m) == 6*(2*384*24 + 384 + 24) + 384*2 + 2
    frozen = {n: p.detach().clone() for n, p in m.named_parameters() if not p.requires_grad}
    dl = text_loader(snippets, tok, bs=16, shuffle=True, max_length=32)
    fit(m, dl, epochs=1, lr=1e-2, progress=False, device='cpu')
    assert all(torch.equal(p, frozen[n]) for n, p in m.named_parameters() if n in frozen)
    assert not torch.allclose(_logits(m, batch), before, atol=1e-4)      # the adapters and head learned something
    with pytest.raises(ValueError, match='already has an adapter'): add_bottleneck_adapters(m)
    with pytest.raises(TypeError, match='not a BERT-like model'): add_bottleneck_adapters(nn.Linear(3, 2))


def test_lora_merge_keeps_predictions(teacher, batch):
    from peft import LoraConfig, TaskType, get_peft_model
    pm = get_peft_model(copy.deepcopy(teacher), LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8,
                                                            target_modules=['query', 'value']))
    assert count_params(pm) == 6*2*4*(384 + 384) + 384*2 + 2
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if 'lora_B' in n: p.normal_(0, 0.05)      # as if trained: B = 0 would make the merge trivial
    before = _logits(pm, batch)
    assert not torch.allclose(before, _logits(teacher, batch), atol=1e-3)
    merged = pm.merge_and_unload()
    assert (_logits(merged, batch) - before).abs().max() < 1e-4
    assert count_params(merged, trainable=False) == count_params(teacher, trainable=False)


def test_distillation_loss_math_and_checks():
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 3), torch.randn(6, 3), torch.randint(0, 3, (6,))
    assert torch.allclose(distillation_loss(s, t, y, alpha=0.), F.cross_entropy(s, y))
    assert distillation_loss(t, t, y, alpha=1.).abs() < 1e-6
    T = 3.
    kl = (F.softmax(t/T, -1)*(F.log_softmax(t/T, -1) - F.log_softmax(s/T, -1))).sum(-1).mean()
    assert torch.allclose(distillation_loss(s, t, y, T=T, alpha=0.3), 0.3*T*T*kl + 0.7*F.cross_entropy(s, y), atol=1e-6)
    s.requires_grad_(True); t.requires_grad_(True)
    distillation_loss(s, t, y).backward()
    assert s.grad is not None and t.grad is None                        # no gradient into the teacher
    with pytest.raises(ValueError, match='same classes'): distillation_loss(s, t[:, :2], y)
    with pytest.raises(ValueError, match='T=0'): distillation_loss(s, t, y, T=0)
    with pytest.raises(ValueError, match='alpha=1.5'): distillation_loss(s, t, y, alpha=1.5)


def test_distiller_makes_fit_optimise_the_distillation_loss(teacher, tok, snippets):
    dl = text_loader(snippets, tok, bs=16, shuffle=True, max_length=32)
    x, y = split_batch(next(iter(dl)), 'cpu')
    student = make_student(teacher, 1)
    extra = distiller(teacher, T=2., alpha=0.7)
    logits = forward(student, x)
    total = F.cross_entropy(logits, y) + extra(student, x, logits, y)
    assert torch.allclose(total, distillation_loss(logits, _logits(teacher, x), y, 2., 0.7), atol=1e-5)
    t_before = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    h = fit(student, dl, epochs=2, lr=5e-4, extra_loss=extra, progress=False, device='cpu')
    assert len(h) == 2 and np.isfinite(h['train_loss']).all()
    assert all(torch.equal(p, t_before[n]) for n, p in teacher.named_parameters())   # the teacher never moves
    with pytest.raises(ValueError, match='alpha=-0.1'): distiller(teacher, alpha=-0.1)


def test_make_student_keeps_evenly_spaced_layers(teacher, batch):
    layer_n = sum(p.numel() for p in teacher.bert.encoder.layer[0].parameters())
    s = make_student(teacher, 2)
    assert len(s.bert.encoder.layer) == 2 and s.config.num_hidden_layers == 2
    assert torch.equal(s.bert.encoder.layer[0].attention.self.query.weight, teacher.bert.encoder.layer[0].attention.self.query.weight)
    assert torch.equal(s.bert.encoder.layer[1].attention.self.query.weight, teacher.bert.encoder.layer[5].attention.self.query.weight)
    assert count_params(s, trainable=False) == count_params(teacher, trainable=False) - 4*layer_n
    assert count_params(s) == count_params(s, trainable=False)           # everything trains
    with torch.no_grad(): s.bert.encoder.layer[0].output.dense.weight.zero_()
    assert teacher.bert.encoder.layer[0].output.dense.weight.abs().sum() > 0   # a copy, not a view
    assert len(make_student(teacher, 3).bert.encoder.layer) == 3
    assert _logits(make_student(teacher, 6), batch).shape == (8, 2)
    s2 = make_student(teacher, 0, layers=[1, 4])
    assert torch.equal(s2.bert.encoder.layer[1].output.dense.weight, teacher.bert.encoder.layer[4].output.dense.weight)
    with pytest.raises(ValueError, match='between 1 and'): make_student(teacher, 0)
    with pytest.raises(ValueError, match='distinct'): make_student(teacher, 2, layers=[0, 6])
    with pytest.raises(TypeError, match='not a BERT-like'): make_student(nn.Linear(2, 2), 1)


def test_prune_minilm_globally_and_by_rows(teacher, batch):
    lin = [m for m in teacher.modules() if isinstance(m, nn.Linear) and m is not get_head(teacher)]
    n_prunable = sum(m.weight.numel() for m in lin)
    dense = model_size(teacher)
    p = prune_model(teacher, 0.5)
    size = model_size(p)
    assert abs((dense['nonzero'] - size['nonzero']) - n_prunable//2) <= 1
    assert torch.count_nonzero(get_head(p).weight) == get_head(teacher).weight.numel()   # the head is kept
    assert all(torch.count_nonzero(m.weight) == m.weight.numel() for m in lin)           # the original is untouched
    assert not any('mask' in n for n, _ in p.named_buffers())                            # prune.remove made it permanent
    assert torch.allclose(_logits(prune_model(teacher, 0.), batch), _logits(teacher, batch))
    r = prune_model(teacher, 0.25, structured=True)
    q = r.bert.encoder.layer[0].attention.self.query.weight
    assert int((q.abs().sum(1) == 0).sum()) == 96                                        # 25% of 384 rows
    with pytest.raises(ValueError, match='amount=1'): prune_model(teacher, 1)
    with pytest.raises(ValueError, match='amount=-0.1'): prune_model(teacher, -0.1)
    with pytest.raises(ValueError, match='no nn.Linear'): prune_model(nn.Conv2d(1, 1, 3), 0.5)


def test_model_size_counts_zeros_and_bytes():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(300, 300), nn.Linear(300, 2))
    d = model_size(m)
    assert d['params'] == 300*300 + 300 + 600 + 2 and d['sparsity'] == 0
    assert 0.9*d['params']*4/1e6 < d['mb'] < 1.2*d['params']*4/1e6                   # float32, dense
    p = prune_model(m, 0.9)
    dp, sp = model_size(p), model_size(p, sparse=True)
    assert abs(dp['mb'] - d['mb']) < 0.01                                               # zeros stored densely
    assert sp['mb'] < 0.6*d['mb'] and sp['nonzero'] == dp['nonzero']                  # CSR pays at 90%
    assert abs(dp['sparsity'] - 0.9*90000/d['params']) < 1e-3
    m[0].weight.data[0, 0] = 0                                                          # one stray zero in a dense matrix
    assert abs(model_size(m, sparse=True)['mb'] - d['mb']) < 0.01                       # kept dense: CSR would be larger
    q = prune_model(m, 0.5)
    assert model_size(q, sparse=True)['mb'] <= model_size(q)['mb'] + 0.01               # never larger than dense


def test_latency_single_dict_and_bad_inputs(teacher, batch):
    t = latency(teacher, batch, repeats=2, warmup=1)
    assert isinstance(t, float) and t > 0
    d = latency({'a': teacher, 'b': make_student(teacher, 1)}, dict(batch), repeats=2)
    assert set(d) == {'a', 'b'} and all(v > 0 for v in d.values())
    assert isinstance(latency(nn.Linear(4, 2), torch.randn(3, 4), repeats=1), float)
    with pytest.raises(TypeError, match='non-empty dict'): latency({}, batch)
    with pytest.raises(TypeError, match='non-empty dict'): latency([teacher], batch)
    with pytest.raises(ValueError, match='repeats=0'): latency(teacher, batch, repeats=0)


def test_prune_ffn_neurons_shrinks_matrices_and_keeps_the_strongest(teacher, batch):
    from tltutor.compress import prune_ffn_neurons
    torch.testing.assert_close(_logits(prune_ffn_neurons(teacher, 0.0), batch), _logits(teacher, batch))  # nothing removed
    p = prune_ffn_neurons(teacher, 0.25)
    layer, orig = p.bert.encoder.layer[2], teacher.bert.encoder.layer[2]
    assert layer.intermediate.dense.weight.shape == (1152, 384) and layer.output.dense.weight.shape == (384, 1152)
    assert orig.intermediate.dense.weight.shape == (1536, 384)                         # a copy by default
    score = orig.intermediate.dense.weight.norm(dim=1)*orig.output.dense.weight.norm(dim=0)
    kept = score.topk(1152).indices.sort().values
    torch.testing.assert_close(layer.intermediate.dense.weight, orig.intermediate.dense.weight[kept])   # the strongest rows,
    torch.testing.assert_close(layer.output.dense.weight, orig.output.dense.weight[:, kept])           # in order
    assert count_params(teacher) - count_params(p) == 6*(384*384*2 + 384)
    assert _logits(p, batch).shape == (8, 2)                                           # the smaller model still runs
    with pytest.raises(TypeError, match='before adding adapters'):
        prune_ffn_neurons(add_bottleneck_adapters(copy.deepcopy(teacher)), 0.5)
    with pytest.raises(TypeError, match='not a BERT-like model'): prune_ffn_neurons(nn.Linear(3, 2), 0.5)
    with pytest.raises(ValueError, match='amount=-0.1'): prune_ffn_neurons(teacher, -0.1)


def test_adapters_and_head_on_a_cached_top(teacher):
    from tltutor.text import TopLayers
    top = TopLayers(teacher.bert, 4)
    assert get_head(top) is top.head                                                  # the head of a TopLayers is found
    h, m = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.long)
    with torch.no_grad(): before = top(h, m)
    ad = add_bottleneck_adapters(top, reduction=24)
    with torch.no_grad(): torch.testing.assert_close(ad(h, m), before)                # identity at initialisation
    assert count_params(ad) == 2*(2*384*16 + 384 + 16) + 770                           # two adapters and the head
    assert all(isinstance(l.output.dense[1], BottleneckAdapter) for l in ad.layers)

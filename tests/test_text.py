"Tests of tltutor.text on real data: the packaged MiniLM, Rotten Tomatoes and VADER."
import numpy as np
import pytest
import torch

from tltutor.core import set_seed
from tltutor.data import few_shot, load_rotten_tomatoes, load_vader, split_indices, text_loader
from tltutor.models import count_params, embed_texts, load_text_model, load_tokenizer
from tltutor.finetune import gradual_unfreeze
from tltutor.text import (EmbeddingCache, TopLayers, domain_shift_matrix, few_shot_curve, fit_probe,
                          hidden_loader, hidden_states, make_trainer, plot_shift_matrix, token_lengths, token_stats)
from tltutor.train import evaluate, fit


@pytest.fixture(scope='module')
def tok(): return load_tokenizer()

@pytest.fixture(scope='module')
def cache(tok): return EmbeddingCache(load_text_model(), tok, max_length=64)

@pytest.fixture(scope='module')
def rt():
    "Rotten Tomatoes texts and labels, a 50-per-class training draw and a 200-snippet test set."
    ds = load_rotten_tomatoes()
    texts, y = np.array(ds['text'], dtype=object), np.array(ds['label'])
    rest, _, test = split_indices(y, val=0, test=0.2, seed=0)
    return ds, texts, y, few_shot(y, 50, seed=0, idx=rest), test[:200]


def test_cache_encodes_each_text_once(cache, tok):
    texts = ['a great film', 'a dull, lifeless film', 'a great film']
    e = cache(texts)
    assert e.shape == (3, 384) and cache.n_encoded == 2
    np.testing.assert_array_equal(e[0], e[2])
    np.testing.assert_allclose(e, embed_texts(texts, cache.model, tok, max_length=64).numpy(), atol=1e-5)
    cache(texts[:2]); assert cache.n_encoded == 2                     # nothing new: nothing encoded
    short = cache(texts, max_length=4)                                # another length is another embedding
    assert cache.n_encoded == 4 and not np.allclose(short[1], e[1])


def test_cache_rejects_bad_inputs(cache):
    with pytest.raises(TypeError, match='wrap it in'): cache('one sentence')
    with pytest.raises(TypeError, match=r'texts\[1\]'): cache(['fine', 3])
    with pytest.raises(ValueError, match='no texts'): cache([])
    with pytest.raises(ValueError, match='max_length'): cache(['fine'], max_length=2)
    with pytest.raises(ValueError, match='max_length'): EmbeddingCache(cache.model, cache.tokenizer, max_length=1.5)


def test_probe_learns_sentiment_and_checks_inputs(cache, rt):
    _, texts, y, tr, te = rt
    clf = fit_probe(cache(texts[tr]), y[tr])
    assert clf.score(cache(texts[te]), y[te]) > 0.58               # majority class: ~0.58
    X = cache(texts[tr])
    with pytest.raises(ValueError, match='2-d'): fit_probe(X[:, 0], y[tr])
    with pytest.raises(ValueError, match='must match'): fit_probe(X, y[tr][:-1])
    with pytest.raises(ValueError, match='at least 2 classes'): fit_probe(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match='C=0'): fit_probe(X, y[tr], C=0)


def test_source_weights_reach_the_probe(cache, rt):
    _, texts, y, tr, _ = rt
    X = cache(texts[tr])
    a = fit_probe(X, y[tr]).coef_
    b = fit_probe(X, y[tr], sample_weight=np.full(len(tr), 0.1)).coef_   # weaker data: stronger regularisation
    assert np.linalg.norm(b) < np.linalg.norm(a)


def test_few_shot_curve(rt):
    _, _, y, _, te = rt
    c = few_shot_curve(lambda idx: len(idx), y, [2, 5], seeds=(0, 1, 2))
    assert c.shape == (2, 3) and (c == np.array([[4], [10]])).all()
    draws = few_shot_curve(lambda idx: idx.sum(), y, [5], seeds=(0, 1))
    assert draws[0, 0] != draws[0, 1]                                  # each seed draws differently
    with pytest.raises(TypeError, match='function'): few_shot_curve(0.5, y, [5])
    with pytest.raises(ValueError, match='non-empty'): few_shot_curve(len, y, [])
    with pytest.raises(ValueError, match='fewer than n_per_class'): few_shot_curve(len, y[te], [500], idx=np.arange(len(te)))


def test_token_lengths_and_stats(tok):
    assert token_lengths(['a good film'], tok).tolist() == [5]           # [CLS] a good film [SEP]
    assert token_lengths(['word ' * 200], tok)[0] == 202                 # no truncation
    en = token_stats(['The actors are brilliant.'], tok)
    fr = token_stats(["Les acteurs sont brillants et l'histoire est émouvante."], tok)
    zh = token_stats(['演员们很出色，故事很感人。'], tok)
    assert en['unk_rate'] == 0 and zh['unk_rate'] > 0.1
    assert fr['continuation_rate'] > en['continuation_rate'] and fr['tokens_per_word'] > en['tokens_per_word']
    with pytest.raises(TypeError, match='wrap it in'): token_lengths('a film', tok)
    with pytest.raises(TypeError, match='not a string'): token_stats([None], tok)


def test_trainer_runs_the_budget_offline(tok, rt):
    ds = rt[0].select(range(32))
    set_seed(0)
    model = load_text_model(num_labels=2)
    before = model.classifier.weight.detach().clone()
    trainer = make_trainer(model, tok, ds, epochs=1, bs=16, lr=1e-4, max_length=32)
    a = trainer.args
    assert a.report_to in ([], 'none', ['none']) and a.use_cpu == (not torch.cuda.is_available())
    assert a.lr_scheduler_type == 'cosine' and a.weight_decay == 0.01 and a.max_grad_norm == 1.0
    trainer.train()
    assert trainer.state.global_step == 2 and not torch.equal(before, model.classifier.weight.detach().cpu())
    with pytest.raises(ValueError, match=r"lacks \['label'\]"): make_trainer(model, tok, ds.remove_columns('label'))
    with pytest.raises(ValueError, match='epochs=0'): make_trainer(model, tok, ds, epochs=0)
    with pytest.raises(ValueError, match='max_length'): make_trainer(model, tok, ds, max_length=1)
    with pytest.raises(ValueError, match='empty'): make_trainer(model, tok, ds.select([]))


def test_gradual_unfreeze_stages(tok, rt):
    "MiniLM in stages (tltutor.finetune.gradual_unfreeze): head only, then everything; one record per epoch with its stage."
    set_seed(0)
    model = load_text_model(num_labels=2)
    dl = text_loader(rt[0].select(range(16)), tok, bs=16, max_length=32)
    h = gradual_unfreeze(model, dl, stages=(-1, 0), lr=1e-3, lowest_lr=1e-4, progress=False)
    assert [r['stage'] for r in h.records] == [1, 2] and h.records[0]['trainable'] < h.records[1]['trainable']
    assert count_params(model) == count_params(model, trainable=False)   # the last stage trains everything
    with pytest.raises(ValueError, match="sched='step'"): gradual_unfreeze(model, dl, stages=(0,), sched='step')


def test_gradual_unfreeze_runs_one_schedule_over_all_stages(tok, rt, monkeypatch):
    "One warm-up and one cosine decay across the stages (not a restart per stage): built once, over every step, ending at 0."
    import tltutor.finetune as ft
    made, real = [], ft.cosine_schedule
    monkeypatch.setattr(ft, 'cosine_schedule', lambda opt, steps, **kw: made.append((opt, steps)) or real(opt, steps, **kw))
    set_seed(0)
    model = load_text_model(num_labels=2)
    dl = text_loader(rt[0].select(range(32)), tok, bs=8, max_length=16)   # 4 steps a stage
    h = gradual_unfreeze(model, dl, stages=(-1, 5, 0), lr=1e-3, progress=False)
    assert len(h) == 3 and len(made) == 1 and made[0][1] == 3*len(dl)     # one schedule, over all 12 steps
    assert all(g['lr'] == 0 for g in made[0][0].param_groups)             # decayed to 0 at the very end
    made.clear(); gradual_unfreeze(model, dl, stages=(0,), lr=1e-3, sched=None, progress=False)
    assert made == []                                                     # sched=None: constant rates


def test_old_text_gradual_unfreeze_keeps_its_call(tok, rt):
    "tltutor.text.gradual_unfreeze, for one release: a DeprecationWarning, and one History per stage as before."
    import tltutor.text as T
    with pytest.warns(DeprecationWarning, match='tltutor.finetune.gradual_unfreeze'): old = T.gradual_unfreeze
    set_seed(0)
    model = load_text_model(num_labels=2)
    dl = text_loader(rt[0].select(range(16)), tok, bs=16, max_length=32)
    hs = old(model, dl, stages=(-1, 0), lr=1e-3, lowest_lr=1e-4, progress=False)
    assert len(hs) == 2 and all(len(h) == 1 for h in hs)
    with pytest.raises(ValueError, match="sched='step'"): old(model, dl, sched='step')


def test_top_layers_on_cached_states_match_the_encoder(tok, rt):
    _, texts, y, tr, te = rt
    enc = load_text_model()
    few = list(texts[te[:6]])
    states = hidden_states(few, 3, enc, tok, max_length=32)
    assert [s.shape[1] for s in states] == [384]*6
    assert [len(s) for s in states] == [min(32, len(tok(t)['input_ids'])) for t in few]   # padding dropped
    top = TopLayers(enc, 3).eval()
    b = next(iter(hidden_loader(states, y[te[:6]], bs=6)))
    with torch.no_grad():
        h = top.token_states(b['hidden_states'], b['attention_mask'])
        full = enc(**tok(few, padding=True, truncation=True, max_length=32, return_tensors='pt')).last_hidden_state
        m = b['attention_mask'].bool()
        assert torch.allclose(h[m], full[m], atol=1e-4)
        assert top(b['hidden_states'], b['attention_mask']).shape == (6, 2)
    assert count_params(top) == sum(count_params(l) for l in enc.encoder.layer[3:]) + 384*2 + 2
    last = enc(**tok(few[:1], truncation=True, max_length=32, return_tensors='pt')).last_hidden_state[0]
    assert torch.allclose(hidden_states(few[:1], 6, enc, tok, max_length=32)[0], last, atol=1e-5)   # layer 6: the encoder's output
    with pytest.raises(ValueError, match='at least one layer'): TopLayers(enc, 6)
    with pytest.raises(ValueError, match='layer=7'): hidden_states(few, 7, enc, tok)
    with pytest.raises(ValueError, match='one label per text'): hidden_loader(states, [0])
    with pytest.raises(ValueError, match='nothing to load'): hidden_loader([], [])


def test_top_layers_learn_with_fit(tok, rt):
    "fit trains the top on cached states: training accuracy rises well above chance on a small draw."
    _, texts, y, tr, te = rt
    enc = load_text_model()
    idx = tr[:64]
    states = hidden_states(list(texts[idx]), 4, enc, tok, max_length=32)
    set_seed(0)
    top = TopLayers(enc, 4)
    dl = hidden_loader(states, y[idx], bs=16, shuffle=True, seed=0)
    before = evaluate(top, hidden_loader(states, y[idx], bs=64))['accuracy']
    fit(top, dl, epochs=6, lr=3e-4, progress=False)
    after = evaluate(top, hidden_loader(states, y[idx], bs=64))['accuracy']
    assert after > 0.9 and after > before + 0.2, (before, after)


def test_domain_shift_matrix_on_real_domains(cache, rt):
    import matplotlib; matplotlib.use('Agg')
    _, texts, y, tr, te = rt
    tw = load_vader('tweets')
    tt, ty = np.array(tw['text'], dtype=object), np.array(tw['label'])
    ttr, tte = few_shot(ty, 50, seed=0, idx=np.arange(len(ty) - 200)), np.arange(len(ty))[-200:]   # disjoint
    doms = {'movie': (cache(texts[tr]), y[tr], cache(texts[te]), y[te]),
            'tweets': (cache(tt[ttr]), ty[ttr], cache(tt[tte]), ty[tte])}
    M = domain_shift_matrix(doms)
    assert M.shape == (2, 2) and list(M.index) == ['movie', 'tweets'] and M.index.name == 'train on'
    assert ((M.values > 0.5) & (M.values <= 1)).all()
    assert M.loc['tweets', 'tweets'] > M.loc['movie', 'tweets']        # in-domain beats the movie source on tweets
    ax = plot_shift_matrix(M)
    assert ax.get_xlabel().startswith('test on') and len(ax.texts) == 4
    with pytest.raises(ValueError, match='at least 2'): domain_shift_matrix({'movie': doms['movie']})
    with pytest.raises(ValueError, match='X_train, y_train'): domain_shift_matrix({'a': doms['movie'], 'b': (1, 2)})

"""tltutor.taxonomy: settings of described transfer problems, method families, and the strategy decision table."""
import math

import numpy as np
import pytest

from tltutor.taxonomy import (EXAMPLES, FAMILIES, STRATEGIES, Domain, Task, TransferProblem, classify_setting,
                              families_table, recommend_strategy)


def P(src, tgt, src_task, tgt_task, src_labels, tgt_labels, **kw):
    "A TransferProblem from (feature space, marginal) pairs and label spaces."
    return TransferProblem(Domain(*src), Task(*src_task), Domain(*tgt), Task(*tgt_task), src_labels, tgt_labels, **kw)


EN_NEWS, EN_CLIN = ('English text', 'news articles'), ('English text', 'clinical notes')
SENT = ('{negative, positive}', 'sentiment of a review')

# name -> (problem, setting, homogeneous, families, mode)
CASES = {
    'news -> medical text (article)': (EXAMPLES['news → medical text'], 'inductive', True, ('parameter', 'feature'), 'sequential'),
    'English -> Chinese sentiment (article)': (EXAMPLES['English → Chinese sentiment'], 'transductive', False, ('feature',), 'sequential'),
    'image -> video clustering (article)': (EXAMPLES['image → video clustering'], 'unsupervised', False, ('feature',), 'sequential'),
    'ImageNet -> chest X-rays': (EXAMPLES['ImageNet → chest X-rays'], 'inductive', True, ('parameter', 'feature'), 'sequential'),
    'movie -> product reviews, unlabelled target': (EXAMPLES['movie → product reviews'], 'transductive', True,
                                                     ('feature', 'instance', 'model'), 'sequential'),
    'MNIST -> MNIST-M': (EXAMPLES['MNIST → MNIST-M'], 'transductive', True, ('feature', 'instance', 'model'), 'sequential'),
    'English -> French sentiment, a few French labels': (
        P(('English text', 'English reviews'), ('French text', 'French reviews'), SENT, SENT, True, True),
        'inductive', False, ('parameter', 'feature'), 'sequential'),
    'clean -> noisy digits, few labels (lesson demo)': (EXAMPLES['clean → noisy digits'], 'inductive', True,
                                                       ('parameter', 'feature', 'instance', 'model'), 'sequential'),
    'NER + POS tagging together': (EXAMPLES['NER + POS tagging (multi-task)'], 'inductive', True, ('parameter', 'feature'), 'multi-task'),
    'self-taught: unlabelled web photos -> labelled flowers': (
        P(('RGB image', 'web photos'), ('RGB image', 'flower photos'), ('none',), ('102 flower species',), False, True),
        'inductive', True, ('parameter', 'feature'), 'sequential'),
    'relational: IMDB -> UW-CSE': (EXAMPLES['IMDB → UW-CSE (relational)'], 'inductive', True,
                                   ('parameter', 'feature', 'relational'), 'sequential'),
    'adult -> child speech, unlabelled children': (
        P(('audio waveform 16 kHz', 'adult speakers'), ('audio waveform 16 kHz', 'child speakers'),
          ('English words',), ('English words',), True, False), 'transductive', True, ('feature', 'instance', 'model'), 'sequential'),
    'finance LM -> social media, labelled target (negative-transfer risk)': (
        P(('English text', 'financial news'), ('English text', 'social media posts'), ('next word',), ('{negative, positive}',),
          True, True), 'inductive', True, ('parameter', 'feature'), 'sequential'),
    'same task, same features, different function f': (
        P(EN_NEWS, EN_NEWS, ('{yes, no}', 'is it about sport'), ('{yes, no}', 'is it about politics'), True, True),
        'inductive', True, ('parameter', 'feature', 'instance'), 'sequential'),
    'unlabelled both sides, same features (clustering news -> tweets)': (
        P(EN_NEWS, ('English text', 'tweets'), ('cluster ids',), ('cluster ids',), False, False),
        'unsupervised', True, ('feature',), 'sequential'),
}


@pytest.mark.parametrize('name', list(CASES))
def test_classify_setting(name):
    problem, setting, homogeneous, families, mode = CASES[name]
    r = classify_setting(problem)
    assert (r.setting, r.homogeneous, r.families, r.mode) == (setting, homogeneous, families, mode), str(r)
    assert r.explanation.startswith(setting) and set(r.families) <= set(FAMILIES)
    assert ('Homogeneous' if homogeneous else 'Heterogeneous') in r.explanation
    assert str(r).startswith(setting)


def test_explanations_name_the_special_cases():
    assert 'supervised domain adaptation' in classify_setting(EXAMPLES['clean → noisy digits']).explanation
    assert 'self-taught' in classify_setting(CASES['self-taught: unlabelled web photos -> labelled flowers'][0]).explanation
    assert 'Multi-task' in classify_setting(EXAMPLES['NER + POS tagging (multi-task)']).explanation
    r = classify_setting(EXAMPLES['news → medical text'])
    assert r.domains_differ and r.tasks_differ
    r = classify_setting(EXAMPLES['MNIST → MNIST-M'])
    assert r.domains_differ and not r.tasks_differ


def test_descriptions_compare_without_case_or_spacing():
    p = P(('English  TEXT', 'news'), ('english text', 'tweets'), ('Topics',), (' topics ',), True, False)
    r = classify_setting(p)
    assert r.homogeneous and not r.tasks_differ and r.setting == 'transductive'


REJECTS = {
    'identical source and target': (lambda: classify_setting(P(EN_NEWS, (' english text', 'NEWS articles'), ('topics',), ('topics',), True, True)),
                                    ValueError, 'not a transfer problem'),
    'target label availability missing': (lambda: classify_setting(P(EN_NEWS, EN_CLIN, ('a',), ('b',), True, None)),
                                          ValueError, 'tgt_labels is not given'),
    'source label availability missing': (lambda: classify_setting(P(EN_NEWS, EN_CLIN, ('a',), ('b',), None, True)),
                                          ValueError, 'src_labels is not given'),
    'different feature spaces, same marginal': (lambda: classify_setting(P(EN_NEWS, ('French text', 'news articles'), ('a',), ('a',), True, False)),
                                                ValueError, 'contradictory'),
    'multi-task without target labels': (lambda: classify_setting(P(EN_NEWS, EN_CLIN, ('a',), ('b',), True, False, joint=True)),
                                         ValueError, 'joint=True'),
    'unlabelled target with a new task (zero-shot)': (lambda: classify_setting(P(EN_NEWS, EN_CLIN, ('a',), ('b',), True, False)),
                                                      ValueError, 'zero-shot'),
    'labels given as a string': (lambda: P(EN_NEWS, EN_CLIN, ('a',), ('b',), 'yes', True), TypeError, 'src_labels must be True or False'),
    'a task where a domain belongs': (lambda: TransferProblem(Task('a'), Task('a'), Domain(*EN_CLIN), Task('b'), True, True),
                                      TypeError, 'src_domain must be a Domain'),
    'empty feature space': (lambda: Domain(' ', 'news'), ValueError, 'feature_space is empty'),
    'label space not a string': (lambda: Task(10), TypeError, 'label_space must be a str'),
    'not a problem at all': (lambda: classify_setting('news -> medical'), TypeError, 'TransferProblem'),
}


@pytest.mark.parametrize('name', list(REJECTS))
def test_classify_setting_rejects(name):
    fn, exc, msg = REJECTS[name]
    with pytest.raises(exc, match=msg): fn()


def test_families_are_complete_and_documented():
    assert list(FAMILIES) == ['instance', 'feature', 'parameter', 'relational', 'model']
    for f in FAMILIES.values():
        assert f.assumption and f.fails_when and f.example and f.lesson
    table = families_table()
    assert table.count('\n') == len(FAMILIES) + 1
    assert all(row.count('|') == 7 for row in table.splitlines())       # no stray pipes inside cells


# (n_target_labels, domain_similarity, compute_budget) -> strategy
DECISIONS = [
    ((50, 'similar', 'medium'), 'feature extraction'),
    ((999, 'similar', 'high'), 'feature extraction'),              # still below `many`
    ((1000, 'similar', 'medium'), 'full fine-tuning'),             # `many` starts here
    ((50_000, 'similar', 'low'), 'partial fine-tuning'),
    ((50, 'dissimilar', 'medium'), 'partial fine-tuning'),
    ((50_000, 'dissimilar', 'medium'), 'full fine-tuning'),
    ((50_000, 'dissimilar', 'low'), 'full fine-tuning'),
    ((50_000, 'dissimilar', 'high'), 'training from scratch'),
    ((0, 'similar', 'medium'), 'domain adaptation'),
    ((0, 'dissimilar', 'high'), 'domain adaptation'),
    ((200, 0.5, 'medium'), 'feature extraction'),                  # a score of 0.5 counts as similar
    ((200, 0.49, 'medium'), 'partial fine-tuning'),
    ((np.int64(200), np.float64(0.9), 'medium'), 'feature extraction'),
    ((200, ' Similar ', 'medium'), 'feature extraction'),
]


@pytest.mark.parametrize('args,strategy', DECISIONS, ids=[f'{a}' for a, _ in DECISIONS])
def test_recommend_strategy(args, strategy):
    r = recommend_strategy(*args)
    assert r.strategy == strategy and r.strategy in STRATEGIES
    assert r.reason and r.lessons and strategy not in r.also_try
    assert str(r).startswith(strategy)


def test_recommend_strategy_reasons():
    assert 'negative transfer' in recommend_strategy(50, 'dissimilar').reason
    assert 'may fail' in recommend_strategy(0, 'dissimilar').reason
    assert 'training from scratch' in recommend_strategy(50_000, 'dissimilar').also_try
    assert recommend_strategy(500, 'similar', many=100).strategy == 'full fine-tuning'


@pytest.mark.parametrize('kwargs,exc,msg', [
    (dict(n_target_labels=-1, domain_similarity='similar'), ValueError, 'negative'),
    (dict(n_target_labels=10.0, domain_similarity='similar'), TypeError, 'whole number'),
    (dict(n_target_labels=True, domain_similarity='similar'), TypeError, 'whole number'),
    (dict(n_target_labels='100', domain_similarity='similar'), TypeError, 'whole number'),
    (dict(n_target_labels=10, domain_similarity='same'), ValueError, 'not understood'),
    (dict(n_target_labels=10, domain_similarity=1.5), ValueError, r'outside \[0, 1\]'),
    (dict(n_target_labels=10, domain_similarity=math.nan), ValueError, r'outside \[0, 1\]'),
    (dict(n_target_labels=10, domain_similarity=None), TypeError, 'domain_similarity'),
    (dict(n_target_labels=10, domain_similarity='similar', compute_budget='huge'), ValueError, 'compute_budget'),
    (dict(n_target_labels=10, domain_similarity='similar', many=0), ValueError, 'many'),
])
def test_recommend_strategy_rejects(kwargs, exc, msg):
    with pytest.raises(exc, match=msg): recommend_strategy(**kwargs)


def test_taxonomy_imports_no_exercises_and_no_torch():
    import tltutor.taxonomy as t, tltutor.exercises as e
    for mod, banned in ((t, ('exercises', 'torch')), (e, ('taxonomy', 'torch'))):
        src = open(mod.__file__).read()
        for b in banned: assert f'import {b}' not in src and f'tltutor.{b}' not in src, (mod.__name__, b)


# --- descriptions read like a person would, unsupervised target tasks, advice that respects the problem -------

def test_descriptions_ignore_case_spacing_and_plurals():
    assert Domain('RGB image', 'photos') == Domain('rgb  Images', 'Photo')
    assert Task('10 classes') == Task('10 Class')
    p = TransferProblem(Domain('RGB image', 'web photos'), Task('1000 classes'), Domain('RGB images', 'X-rays'),
                        Task('{normal, pneumonia}'), True, True)
    assert classify_setting(p).homogeneous


def test_an_unsupervised_target_task_makes_the_setting_unsupervised():
    web, forum = Domain('English text', 'web pages'), Domain('English text', 'forum posts')
    p = TransferProblem(web, Task('masked words'), forum, Task('topics', supervised=False), True, False)
    s = classify_setting(p)
    assert s.setting == 'unsupervised' and s.families == ('feature',) and 'no labels by nature' in s.explanation
    with pytest.raises(ValueError, match='supervised=False'):   # without the mark: the zero-shot error points to it
        classify_setting(TransferProblem(web, Task('masked words'), forum, Task('topics'), True, False))


def test_contradictory_label_flags_are_refused():
    web, forum = Domain('English text', 'web pages'), Domain('English text', 'forum posts')
    with pytest.raises(ValueError, match='tgt_labels=True, but the target task'):
        classify_setting(TransferProblem(web, Task('x'), forum, Task('none (unlabelled)', supervised=False), True, True))
    with pytest.raises(TypeError, match='supervised must be True or False'): Task('x', supervised='no')


def test_recommend_strategy_respects_the_problem():
    web, forum = Domain('English text', 'news'), Domain('English text', 'forum posts')
    clusters = Task('cluster ids', supervised=False)
    r = recommend_strategy(0, 'similar', problem=TransferProblem(web, clusters, forum, clusters, False, False))
    assert r.strategy == 'feature extraction' and 'source labels' not in r.reason and 'none on the source' in r.reason
    h = TransferProblem(Domain('audio', 'speech'), Task('{a, b}'), Domain('RGB image', 'photos'), Task('{a, b}'), True, True)
    r = recommend_strategy(50, 'dissimilar', problem=h)
    assert 'shared representation' in r.reason and 'lower layers' not in r.reason
    movie = EXAMPLES['movie → product reviews']
    assert recommend_strategy(0, 'similar', problem=movie) == recommend_strategy(0, 'similar')   # the setting forces nothing
    with pytest.raises(ValueError, match='make them agree'): recommend_strategy(10, 'similar', problem=movie)


def test_a_description_that_only_adds_words_is_asked_about_not_guessed():
    "'10 classes' → '10 object classes' may be one label space said twice: the error says how to tell it which."
    from tltutor.taxonomy import _one_names_more
    assert _one_names_more('10 classes', '10 object classes') and _one_names_more('10 Object Classes', '10 class')
    assert not _one_names_more('10 classes', '10 classes')                   # the same: nothing added
    assert not _one_names_more('classes 10', '10 object classes')             # the words are not in order
    assert not _one_names_more('{negative, positive}', '{negative, neutral, positive}')
    P = lambda a, b: TransferProblem(Domain('RGB image', 'photos'), Task(a), Domain('RGB image', 'sketches'), Task(b), True, False)
    with pytest.raises(ValueError, match='describe them identically') as e: classify_setting(P('10 classes', '10 object classes'))
    assert "'10 classes' vs '10 object classes'" in str(e.value) and 'zero-shot' in str(e.value)
    assert classify_setting(P('10 object classes', '10 object class')).setting == 'transductive'   # said identically
    with pytest.raises(ValueError, match='no setting of the taxonomy fits'): classify_setting(P('10 digit classes', '{cat, dog}'))


# --- the measured path: candidates scored on the target data ---------------------------------------------------
def _measured(seed=0, n=120, k=3):
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n//k)
    good = g.normal(size=(n, 6)); good[:, :k] += 3*np.eye(k)[y]
    return {'good': good, 'random net': g.normal(size=(n, 6))}, y


def test_recommend_strategy_measured_path():
    c, y = _measured()
    r = recommend_strategy(sources=c, y=y, reference='random net', n_subsamples=30)
    assert r.strategy == 'feature extraction' and r.source == 'good' and r.confidence == 1.0
    assert '05b_choosing_a_source' in r.lessons and 'LogME' in r.reason and str(r).startswith("feature extraction from 'good'")
    assert recommend_strategy(5000, sources=c, y=y, n_subsamples=0).strategy == 'full fine-tuning'   # many labels


def test_recommend_strategy_measured_path_predicts_no_transfer():
    c, y = _measured()
    g = np.random.default_rng(3)
    r = recommend_strategy(sources={'other noise': g.normal(size=c['good'].shape), 'random net': c['random net']}, y=y,
                           reference='random net', n_subsamples=30)
    assert r.strategy == 'training from scratch' and 'predicted not to help' in r.reason


def test_recommend_strategy_measured_path_rejects():
    c, y = _measured()
    with pytest.raises(ValueError, match='needs `y`'): recommend_strategy(sources=c)
    with pytest.raises(TypeError, match='either measurements'): recommend_strategy()
    with pytest.raises(ValueError, match='not one of the candidates'): recommend_strategy(sources=c, y=y, reference='scratch')

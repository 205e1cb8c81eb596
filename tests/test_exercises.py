"""tltutor.exercises: checkers give feedback, hints advance, quizzes render the same text with or without widgets."""
import os

import numpy as np
import pytest

from tltutor.exercises import Choice, Exact, Exercise, Feedback, Number, Quiz, is_static, quiz

WIDGET = 'application/vnd.jupyter.widget-view+json'


def setting_ex():
    return Exercise('Labelled English reviews -> unlabelled Chinese reviews: which setting?',
                    Choice(['inductive', 'transductive', 'unsupervised'], 'b',
                           why={'a': 'inductive needs target labels.', 'c': 'the source is labelled.'}),
                    hints=['Where are the labels?', 'Pan & Yang name settings after label availability.'],
                    solution='Transductive.')


def test_feedback_truthiness_and_text():
    assert Feedback(True, 'ok') and not Feedback(False, 'no')
    assert str(Feedback(False, 'too high.', 'think in fractions')) == '✗ Not yet: too high.\n  Hint: think in fractions'
    assert repr(Feedback(True, 'fine')) == '✓ Right: fine'


def test_choice_feedback_per_wrong_option():
    ex = setting_ex()
    fb = ex.check('a')
    assert not fb and 'inductive needs target labels' in fb.message and fb.hint == 'Where are the labels?'
    fb = ex.check('unsupervised')                          # by text
    assert not fb and 'the source is labelled' in fb.message
    assert fb.hint == 'Pan & Yang name settings after label availability.'
    assert ex.check('x').hint == 'Pan & Yang name settings after label availability.'  # the last hint repeats
    assert 'not an option' in ex.check('x').message
    assert ex.check('B') and ex.check('b)') and ex.check(' Transductive ')
    assert ex.wrong == 4
    assert not ex.check(1) and not ex.check(None)          # non-strings are feedback, not errors


def test_choice_rejects_bad_definitions():
    with pytest.raises(ValueError, match='not one of the options'): Choice(['x', 'y'], 'z')
    with pytest.raises(ValueError, match='at least 2'): Choice(['x'], 'x')
    with pytest.raises(TypeError, match='dict'): Choice('xy', 'x')
    with pytest.raises(ValueError, match='not an option'): Choice({'p': 'x', 'q': 'y'}, 'p', why={'r': '?'})
    with pytest.raises(TypeError, match='dict'): Choice(['x', 'y'], 'x', why=['?'])


def test_number_tolerances_and_messages():
    n = Number(0.25, tol=0.01, why={0.5: 'that is the std, not the variance.'})
    assert n(0.259)[0] and n(np.float32(0.25))[0] and n(' 0.25 ')[0] and n(np.array(0.25))[0]
    assert n(0.3) == (False, '0.3 is too high.') and n(0.2) == (False, '0.2 is too low.')
    assert n(0.505) == (False, 'that is the std, not the variance.')
    for bad in ['a quarter', None, True, float('nan'), [0.25]]:
        ok, msg = n(bad)
        assert not ok and 'expected a number' in msg
    r = Number(1000, rel=0.05)
    assert r(1049)[0] and not r(1051)[0]
    with pytest.raises(TypeError): Number('abc')
    with pytest.raises(ValueError): Number(1, tol=-1)
    with pytest.raises(ValueError): Number(float('inf'))


def test_exact_normalises_strings_and_accepts_synonyms():
    e = Exact('domain adaptation', also=('领域自适应', 'DA'), why={'fine-tuning': 'fine-tuning needs target labels.'})
    assert e('Domain   Adaptation')[0] and e('领域自适应')[0] and e('da')[0]
    assert e('fine-tuning') == (False, 'fine-tuning needs target labels.')
    assert not e('transfer')[0]
    assert Exact(3)(3)[0] and not Exact(3)('3')[0] and Exact('3')(3)[0]
    assert Exact((1, 2))((1, 2))[0] and not Exact((1, 2))((2, 1))[0]
    assert isinstance(Exact(np.arange(3))(np.arange(3))[0], bool)  # ambiguous array equality: feedback, no raise


def test_custom_checks_bool_tuple_and_exceptions():
    ex = Exercise('Give an even number.', lambda a: (a % 2 == 0, f'{a} is odd.'), hints='Try 2.')
    fb = ex.check(3)
    assert not fb and fb.message == '3 is odd.' and fb.hint == 'Try 2.'
    assert ex.check(4)
    fb = ex.check('four')                                  # the check raised: reported, not propagated
    assert not fb and 'raised TypeError' in fb.message
    assert Exercise('positive?', lambda a: a > 0).check(1)
    assert not Exercise('positive?', lambda a: a > 0).check(-1)


def test_exercise_defaults_and_errors():
    assert Exercise('2 + 2?', 4).check(4) and not Exercise('2 + 2?', 4).check(5)
    assert isinstance(Exercise('pi?', 3.14159).checker, Number)
    assert isinstance(Exercise('word?', 'x').checker, Exact)
    with pytest.raises(TypeError, match='non-empty'): Exercise('  ', 4)
    with pytest.raises(TypeError, match='hints'): Exercise('q?', 4, hints=[1, 2])
    assert 'a) inductive' in str(setting_ex()) and 'Transductive.' not in str(setting_ex())


def test_quiz_static_text_is_deterministic_and_numbered():
    q = quiz([setting_ex(), Exercise('2 + 2?', 4)], title='Check yourself', static=True)
    text = str(q)
    assert text.splitlines()[0] == 'Check yourself'
    assert '1. Labelled English reviews' in text and '   b) transductive' in text and '2. 2 + 2?' in text
    assert q._repr_mimebundle_() == {'text/plain': text}
    assert str(quiz([setting_ex(), Exercise('2 + 2?', 4)], title='Check yourself', static=True)) == text
    with pytest.raises(TypeError): quiz([])
    with pytest.raises(TypeError): quiz(['not an exercise'])


def test_quiz_widgets_give_the_same_text_and_feedback():
    ex = setting_ex()
    q = quiz([ex, Exercise('2 + 2?', Number(4))], static=False)
    bundle = q._repr_mimebundle_()
    assert bundle['text/plain'] == str(quiz([ex, Exercise('2 + 2?', Number(4))], static=True))
    assert WIDGET in bundle
    box1, box2 = q.widget.children[1:]
    box1.check_button.click()
    assert 'Pick an option' in box1.output.value
    box1.input.value = 'a'; box1.check_button.click()
    assert 'Not yet' in box1.output.value and 'inductive needs target labels' in box1.output.value
    box1.input.value = 'b'; box1.check_button.click()
    assert 'Right' in box1.output.value
    box2.input.value = '5'; box2.check_button.click()
    assert 'too high' in box2.output.value
    box2.input.value = ' 4.0 '; box2.check_button.click()
    assert 'Right' in box2.output.value
    sol = box1.children[2].children[1]
    sol.click(); assert 'Transductive.' in box1.output.value


def test_is_static(monkeypatch):
    monkeypatch.setenv('TLTUTOR_STATIC', '1')
    assert is_static() and quiz([Exercise('q?', 1)]).static
    monkeypatch.delenv('TLTUTOR_STATIC')
    assert is_static()                                     # pytest is no Jupyter kernel
    assert not quiz([Exercise('q?', 1)], static=False).static

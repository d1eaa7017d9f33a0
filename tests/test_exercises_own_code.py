"""The ★★★ checks (the learner's own decoding, grid loop and fitted line against the kit's): each passes the
kit's own answer and fails a wrong one, on cases whose answer is known before the check runs. That the
notebooks' reference solutions pass them on a real run is tests/test_notebooks.py's (the runner executes
every solution block)."""
from types import SimpleNamespace

from cramlab.lab import exercises


def test_own_decode_passes_the_same_ids_and_names_the_first_difference(capsys):
    assert exercises.check_own_decode([5, 6, 7], [5, 6, 7])
    assert not exercises.check_own_decode([5, 9, 7], [5, 6, 7])
    assert "position 1" in capsys.readouterr().out
    assert not exercises.check_own_decode(..., [5, 6, 7])
    assert not exercises.check_own_decode([5, 6], [5, 6, 7])
    assert "position 2" in capsys.readouterr().out


def _grid(accuracies: dict, n_texts=2, threshold=0.99):
    records = [SimpleNamespace(n_tokens=n, mean_accuracy=a, n_texts=n_texts) for n, a in accuracies.items()]
    fits = [n for n, a in accuracies.items() if a >= threshold]
    return SimpleNamespace(records=records, threshold=threshold, max_tokens=max(fits) if fits else None)


def test_own_grid_agrees_at_every_length_and_derives_max():
    grid = _grid({8: 1.0, 16: 0.75})                        # Max = 8, known in advance
    rows = [{"n_tokens": 8, "mean_accuracy": 1.0}, {"n_tokens": 16, "mean_accuracy": 0.75}]
    assert exercises.check_own_grid(rows, grid)
    # one text's one token at the shortest length is tolerated (CPU sums may tip an argmax) ...
    assert exercises.check_own_grid([{"n_tokens": 8, "mean_accuracy": 1.0}, {"n_tokens": 16, "mean_accuracy": 0.7}],
                                    grid)
    # ... a whole text is not, and neither is a length left out
    assert not exercises.check_own_grid([{"n_tokens": 8, "mean_accuracy": 1.0},
                                         {"n_tokens": 16, "mean_accuracy": 0.25}], grid)
    assert not exercises.check_own_grid(rows[:1], grid)
    assert not exercises.check_own_grid(..., grid)


def test_own_fit_matches_a_line_of_known_slope_and_gain():
    # texts that did not fit lie on CE_with = CE_without - 50 (slope 1, C = 50); the one that fit is left out
    points = [dict(converged=False, baseline_ce_nats=x, final_ce_nats=x - 50.0) for x in (100.0, 200.0, 300.0)]
    points.append(dict(converged=True, baseline_ce_nats=40.0, final_ce_nats=0.0))
    assert exercises.check_own_fit(1.0, 50.0, points)
    assert not exercises.check_own_fit(1.0, 45.0, points)       # C over every text would be 47.5: wrong
    assert not exercises.check_own_fit(0.9, 50.0, points)
    assert not exercises.check_own_fit(..., 50.0, points)
    assert not exercises.check_own_fit(1.0, 50.0, [dict(converged=True, baseline_ce_nats=1.0, final_ce_nats=0.0)])


def test_own_accuracies_match_crams_within_one_token():
    results = {1: [SimpleNamespace(teacher_forced_accuracy=0.5, n_scored=8)],
               2: [SimpleNamespace(teacher_forced_accuracy=1.0, n_scored=8)]}
    assert exercises.check_own_accuracies({1: 0.5, 2: 1.0}, results)
    assert exercises.check_own_accuracies({1: 0.625, 2: 1.0}, results)          # one token of 8 off: tolerated
    assert not exercises.check_own_accuracies({1: 0.75, 2: 1.0}, results)       # two tokens off
    assert not exercises.check_own_accuracies({1: 0.5}, results)
    assert not exercises.check_own_accuracies(..., results)


def test_own_progressive_matches_the_reference_and_runs_it_only_once_answered():
    ran = []

    def reference():
        ran.append(1)
        return SimpleNamespace(longest_tokens=10, total_steps=200)

    assert not exercises.check_own_progressive(..., reference) and not ran     # no answer: nothing runs
    assert exercises.check_own_progressive((10, 205), reference)
    assert not exercises.check_own_progressive((8, 200), reference)
    assert not exercises.check_own_progressive((10, 400), reference)


def test_a_hand_written_carrying_loop_passes_against_the_kits_progressive():
    """Notebook 08's reference loop on the tiny model (random ids it can be steered to, as tests/test_bite.py):
    vectors and AdamW state carried by hand give progressive(carry_optimizer=True)'s length and steps."""
    import random

    from cramlab.engine.plain import cram
    from cramlab.models.load import load_model
    from cramlab.science.search import progressive
    lm = load_model("tiny-llama")
    ids = [random.Random(0).randrange(1000) for _ in range(10)]
    longest, total, last, n = 0, 0, None, 2
    while True:
        r = cram(lm, [ids[:n]], max_steps=30, lr=0.5, seed=0, progress=False, decode=False,
                 init_vectors=None if last is None else last.vectors,
                 init_optimizer=None if last is None else last.optimizer)[0]
        total += r.steps
        if not r.converged or n >= 10:
            longest = n if r.converged else longest
            break
        longest, last, n = n, r, min(n + 2, 10)
    reference = progressive(lm, [ids], start=2, step_tokens=2, max_tokens=10, max_steps=30, lr=0.5, seed=0,
                            carry_optimizer=True).texts[0]
    assert longest >= 4                                   # it grew past its first length: the carry was used
    assert exercises.check_own_progressive((longest, total), reference)

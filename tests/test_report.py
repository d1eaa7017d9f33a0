"""One Max rule and one Table-1 aggregation (cramlab.science.report), used by search, sweep's report, exercises and
plots; a results file and a length sweep of the same results give the same Table-1 row."""
import ast
import math
from pathlib import Path

import pytest

from cramlab.lab import exercises
from cramlab.science.report import (
    EVERY_TEXT_FIT,
    PAPER_THRESHOLD,
    length_records,
    max_tokens_that_fit,
    not_fit_averages,
    report,
    table1_row_from_grid,
)

PACKAGE = Path(__file__).resolve().parents[1] / "cramlab"


def _line(n, acc, base_acc, ce0, ce1, text, greedy=None):
    return dict(model="pythia-160m", source="unseen", layout="sink-first", protocol="pc", n_mem=1, n_tokens=n,
                text_id=text, teacher_forced_accuracy=acc, baseline_accuracy=base_acc, baseline_ce_nats=ce0,
                final_ce_nats=ce1, info_gain_nats=ce0 - ce1, gain_tokens=(acc - base_acc) * n,
                greedy_exact=greedy, d=768, vocab_size=50304)


SOME_DID_NOT_FIT = [_line(8, 1.0, 0.5, 30, 1, "a", True), _line(8, 1.0, 0.4, 28, 2, "b", True),
                    _line(16, 1.0, 0.5, 60, 3, "a"), _line(16, 0.985, 0.5, 64, 9, "b"),
                    _line(32, 0.5, 0.25, 120, 40, "a"), _line(32, 1.0, 0.3, 110, 5, "b")]
EVERY_ONE_FIT = [_line(8, 1.0, 0.5, 30, 1, "a", True), _line(16, 1.0, 0.5, 60, 3, "a", False)]


@pytest.mark.parametrize("lines", [SOME_DID_NOT_FIT, EVERY_ONE_FIT], ids=["some-did-not-fit", "every-text-fit"])
def test_results_file_report_and_grid_row_agree(lines):
    """`cramlab report` and notebook 04's row used to disagree when every text fit (NaN vs None)."""
    (row,) = report(lines)
    (records,) = length_records(lines).values()
    grid_row = table1_row_from_grid(dict(records=records, n_mem=1), "pythia-160m", 768, 50304)
    for key in ("max_tokens", "n_not_fit", "gain_tokens", "info_gain_nats", "capacity_utilisation",
                "averages_note"):
        assert getattr(row, key) == grid_row[key], key


def test_every_text_fit_gives_none_with_the_reason():
    (row,) = report(EVERY_ONE_FIT)
    assert row.max_tokens == 16 and row.n_not_fit == 0
    assert row.gain_tokens is None and row.info_gain_nats is None and row.info_gain_bits is None
    assert row.capacity_utilisation is None
    assert row.averages_note == EVERY_TEXT_FIT.format(threshold=PAPER_THRESHOLD)
    averages = not_fit_averages([dict(teacher_forced_accuracy=1.0, gain_tokens=3.0, info_gain_nats=9.0)])
    assert averages.n_not_fit == 0 and averages.gain_tokens is None and "every text fit" in averages.reason


def test_not_fit_averages_pool_over_lengths_and_skip_missing_values():
    averages = not_fit_averages([dict(teacher_forced_accuracy=0.5, gain_tokens=4.0, info_gain_nats=40.0),
                                 dict(teacher_forced_accuracy=0.99, gain_tokens=8.0, info_gain_nats=float("nan")),
                                 dict(teacher_forced_accuracy=1.0, gain_tokens=100.0, info_gain_nats=100.0)],
                                variant="scored")
    assert averages.n_not_fit == 2                                    # accuracy <= 0.99, the paper's rule
    assert averages.gain_tokens == 6.0 and averages.info_gain_nats == 40.0
    assert averages.info_gain_bits == pytest.approx(40.0 / math.log(2)) and averages.reason is None


def test_max_rule_is_mean_accuracy_at_least_the_threshold():
    records = [dict(n_tokens=8, mean_accuracy=1.0), dict(n_tokens=16, mean_accuracy=0.99),
               dict(n_tokens=32, mean_accuracy=0.989), dict(n_tokens=64, mean_accuracy=0.2)]
    assert max_tokens_that_fit(records) == 16                         # 0.99 fits, 0.989 does not
    assert max_tokens_that_fit(records, threshold=0.5) == 32
    assert max_tokens_that_fit(records[3:]) is None
    assert exercises.max_tokens_that_fit is max_tokens_that_fit


def _threshold_comparisons(path: Path) -> list[int]:
    """Lines of `x >= threshold` / `x <= threshold` (the two rules) in one module."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators):
                name = getattr(right, "id", None) or getattr(right, "attr", None)
                if isinstance(op, (ast.GtE, ast.LtE)) and name in ("threshold", "PAPER_THRESHOLD"):
                    lines.append(node.lineno)
    return lines


def test_the_two_rules_are_written_once_in_report():
    found = {str(p.relative_to(PACKAGE)): _threshold_comparisons(p) for p in PACKAGE.rglob("*.py")}
    found = {k: v for k, v in found.items() if v}
    assert set(found) == {"science/report.py"} and len(found["science/report.py"]) == 2, found


def test_paper_code_gains_use_the_minimum_loss_and_n_tokens():
    """Kuratov et al.'s Table 1: IG = (CE without vector - minimum training loss) x N, gain x N (hc scores N-1)."""
    from cramlab.science.report import not_fit_averages, text_gains
    r = dict(n_tokens=10, n_scored=9, teacher_forced_accuracy=0.5, baseline_accuracy=0.1,
             baseline_ce_per_token_nats=3.0, min_ce_per_token_nats=1.0, final_ce_per_token_nats=1.5,
             gain_tokens=(0.5 - 0.1) * 9, info_gain_nats=(3.0 - 1.5) * 9)
    gain, info = text_gains(r, "paper-code")
    assert gain == pytest.approx(4.0) and info == pytest.approx(20.0)
    assert text_gains(r, "scored") == (pytest.approx(3.6), pytest.approx(13.5))
    fit = dict(r, teacher_forced_accuracy=1.0)
    avg = not_fit_averages([r, fit], variant="paper-code")
    assert avg.n_not_fit == 1 and avg.info_gain_nats == pytest.approx(20.0)
    with pytest.raises(ValueError):
        text_gains(r, "other")


def test_the_papers_convention_is_the_default_and_falls_back_labelled():
    """Beside Kuratov et al.'s numbers the default is their code's convention; lines without a minimum
    loss (sweep files) fall back to the final loss, lines without per-token losses to `scored`, and the
    row says which convention it used."""
    from cramlab.science.report import DEFAULT_VARIANT, text_gains, usable_variant
    r = dict(n_tokens=10, n_scored=9, teacher_forced_accuracy=0.5, baseline_accuracy=0.1,
             baseline_ce_per_token_nats=3.0, min_ce_per_token_nats=1.0, final_ce_per_token_nats=1.5)
    assert DEFAULT_VARIANT == "paper-code"
    assert text_gains(r) == (pytest.approx(4.0), pytest.approx(20.0))        # (0.5-0.1)*10, (3-1)*10
    assert text_gains(r, "paper-code-final")[1] == pytest.approx(15.0)        # (3-1.5)*10
    # their best_accuracy is the best TRAINING accuracy: where a line keeps it, the paper's gain uses it
    assert text_gains(dict(r, train_accuracy=0.6))[0] == pytest.approx(5.0)   # (0.6-0.1)*10
    assert text_gains(dict(r, train_accuracy=0.6), "scored") == (None, None)  # scored: the line's own fields
    no_min = {k: v for k, v in r.items() if k != "min_ce_per_token_nats"}
    assert usable_variant([r]) == "paper-code" and usable_variant([no_min]) == "paper-code-final"
    assert usable_variant([dict(gain_tokens=1.0)]) == "scored"
    (row,) = report(SOME_DID_NOT_FIT)                # these lines carry totals only
    assert row.gain_variant == "scored"
    lines = [dict(x, min_ce_per_token_nats=0.5, baseline_ce_per_token_nats=x["baseline_ce_nats"] / x["n_tokens"])
             for x in SOME_DID_NOT_FIT]
    (row,) = report(lines)
    not_fit = [x for x in lines if x["teacher_forced_accuracy"] <= 0.99]    # 16/b (0.985) and 32/a (0.5)
    assert row.gain_variant == "paper-code" and row.n_not_fit == 2
    assert row.info_gain_nats == pytest.approx(sum(x["baseline_ce_nats"] - 0.5 * x["n_tokens"] for x in not_fit) / 2)
    assert row.gain_tokens == pytest.approx(((0.985 - 0.5) * 16 + (0.5 - 0.25) * 32) / 2)


def test_random_text_max_is_grouped_by_each_texts_drawn_length():
    """Kuratov et al.'s random texts draw their length uniformly in [2, L] at grid length L; their Max groups
    by that drawn length. Here by grid length no length fits (8: mean 0.83, 16: 0.6); by drawn length 3 and
    5 fit (5 twice: one from L=8, one from L=16), 7 and 12 do not: Max 5."""
    from cramlab.science.report import max_tokens_by_drawn_length

    def rnd(drawn, grid, acc, i):
        return dict(_line(drawn, acc, 0.0, 10.0, 5.0, f"r{i}"), source="random", grid_tokens=grid)
    lines = [rnd(3, 8, 1.0, 0), rnd(5, 8, 1.0, 1), rnd(7, 8, 0.5, 2), rnd(5, 16, 1.0, 3), rnd(12, 16, 0.2, 4)]
    assert max_tokens_by_drawn_length(lines) == 5
    by_grid = [dict(n_tokens=g, mean_accuracy=sum(x["teacher_forced_accuracy"] for x in lines if x["grid_tokens"] == g)
                    / sum(x["grid_tokens"] == g for x in lines)) for g in (8, 16)]
    assert max_tokens_that_fit(by_grid) is None                      # the nominal grouping would say "none"
    (row,) = report(lines)
    assert row.max_tokens == 5 and row.lengths == [3, 5, 7, 12]

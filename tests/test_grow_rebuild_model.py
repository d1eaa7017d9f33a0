"""experiments/grow_rebuild_model.py: the replay's arithmetic on a job whose answer is worked out by hand."""
import pytest
from repo_scripts import load_script

model = load_script("experiments/grow_rebuild_model.py")


def test_three_short_texts_and_one_long_one_cost_what_the_hand_count_says():
    """Four texts at one token (fed 32 + 1 prefix position = 33 wide), three stop at step 100, one at 10,000; a step
    costs 1 us a row-token. Half rule: 100 steps at 4 rows (13.2 ms), a rebuild at step 100 (400,000 + 4 x (2,000 +
    33) row-tokens = 408.132 ms), 9,900 steps at 1 row (326.7 ms). Priced rule: the three dead rows pay for a capture
    only once steps run x 3 x 33 >= 408,132, at the read of step 4,150: 547.8 + 408.132 + 5,850 x 0.033 ms."""
    short = {"records": [{"n_tokens": 1, "steps": 100}], "total_steps": 100, "start_tokens": 1}
    long_ = {"records": [{"n_tokens": 1, "steps": 10_000}], "total_steps": 10_000, "start_tokens": 1}
    lines = [short, short, short, long_]
    kw = dict(fixed_ms=0.0, us_per_row_token=1.0, n_prefix=1)
    half = model.replay(lines, "half", **kw)
    priced = model.replay(lines, "priced", **kw)
    assert half["rebuilds"] == priced["rebuilds"] == 1 and half["steps"] == priced["steps"] == 10_000
    assert half["seconds"] == pytest.approx((13.2 + 408.132 + 326.7) / 1000)
    assert priced["seconds"] == pytest.approx((547.8 + 408.132 + 5850 * 0.033) / 1000)

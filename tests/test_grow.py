"""grow.py's compaction: shrinking the batch and the fed length as texts stop changes no text's outcome."""

import pytest
import torch
from repo_scripts import load_script

from cramlab.engine.grow import grow
from cramlab.engine.settings import CramSettings

gpu_check = load_script("experiments/gpu_check.py")


@pytest.fixture(scope="module")
def staggered_rows(tiny):
    """Rows that stop at different lengths on the tiny model (built by experiments/gpu_check.py, whose GPU check
    runs the same comparison through CUDA-graph re-captures)."""
    return gpu_check.staggered_rows(tiny)


@pytest.mark.parametrize("layout,protocol", [("mem-first", "pc"), ("sink-first", "hc")])
def test_compacted_growth_equals_one_batch_fed_at_the_cap(tiny, staggered_rows, layout, protocol):
    """#13/#14: bucketed growth (batch rebuilt for the live texts, fed only a bucket above the longest live
    length, texts waiting when they outgrow it) equals one batch fed at the cap from start to end: same
    longest length, stop reason and steps at every length for every text, same vectors to float rounding."""
    s = CramSettings.from_preset("progressive-2026", layout=layout, protocol=protocol, lr=1.0, max_steps=30,
                                 warmup_steps=0, schedule_steps=300, start_tokens=1 if protocol == "pc" else 2)
    one = grow(tiny.model, staggered_rows, s, 12, tiny.spec.sink_token_id, compact=False)
    with gpu_check.captures_priced_at_zero():     # the tiny steps never pay for a capture at the real prices
        packed = grow(tiny.model, staggered_rows, s, 12, tiny.spec.sink_token_id, compact=True, feed_bucket=2,
                      steps_per_check=3)
    assert one.shapes == [(6, 12)]
    assert len({b for b, _ in packed.shapes}) >= 3 and len({f for _, f in packed.shapes}) >= 3, packed.shapes
    assert len(set(one.longest_tokens)) >= 3, one.longest_tokens            # the texts do stop apart
    assert packed.longest_tokens == one.longest_tokens
    assert packed.stop_reasons == one.stop_reasons and packed.failed_tokens == one.failed_tokens
    assert packed.total_steps == one.total_steps and packed.steps_per_length == one.steps_per_length
    # other batch and sequence shapes round differently: ~1e-6 of |v| ~ 10 here
    assert torch.allclose(packed.vectors, one.vectors, rtol=1e-4, atol=1e-4)


def _rebuilt_for_rows_alone(shapes):
    """Builds that kept the fed length and only dropped rows."""
    return [(a, b) for a, b in zip(shapes, shapes[1:]) if a[1] == b[1] and b[0] < a[0]]


def test_stopped_rows_stay_until_a_rebuild_pays_for_its_capture(tiny, staggered_rows):
    """#28: with `keep_retired` (a GPU's default, here on the CPU) the batch is rebuilt just to drop stopped texts
    only when fast.worth_rebuilding says the work they would cost pays for a capture (a rebuild the fed length
    calls for drops them anyway). Known in advance: 6 rows of at
    most 14 positions over a few hundred steps cost far less than a capture (400,000 row-tokens), so at the real
    prices no build is for rows alone; with captures priced at zero the same run has such builds. The outcome is
    the one batch's either way."""
    s = CramSettings.from_preset("progressive-2026", layout="mem-first", protocol="pc", lr=1.0, max_steps=30,
                                 warmup_steps=0, schedule_steps=300, start_tokens=1)
    one = grow(tiny.model, staggered_rows, s, 12, tiny.spec.sink_token_id, compact=False)
    kw = dict(compact=True, feed_bucket=2, steps_per_check=3, keep_retired=True)
    priced = grow(tiny.model, staggered_rows, s, 12, tiny.spec.sink_token_id, **kw)
    with gpu_check.captures_priced_at_zero():
        free = grow(tiny.model, staggered_rows, s, 12, tiny.spec.sink_token_id, **kw)
    assert _rebuilt_for_rows_alone(priced.shapes) == [], priced.shapes
    assert _rebuilt_for_rows_alone(free.shapes), free.shapes
    for run in (priced, free):
        assert run.longest_tokens == one.longest_tokens and run.total_steps == one.total_steps


def test_an_eager_cpu_step_drops_stopped_texts_at_the_next_read(tiny, staggered_rows):
    """Without a capture to pay for (the CPU default, `keep_retired=False`), a read that finds a text stopped
    rebuilds the batch without it, whatever the prices: some build drops rows with the fed length unchanged."""
    s = CramSettings.from_preset("progressive-2026", layout="mem-first", protocol="pc", lr=1.0, max_steps=30,
                                 warmup_steps=0, schedule_steps=300, start_tokens=1)
    eager = grow(tiny.model, staggered_rows, s, 12, tiny.spec.sink_token_id, compact=True, feed_bucket=2,
                 steps_per_check=3)
    assert _rebuilt_for_rows_alone(eager.shapes), eager.shapes

"""The engine contract (step.ENGINE_SUPPORT): engines x presets x options on the tiny model.

Three schedulers run one step (step.py): `plain` (cram.py's loop; progressive's per-length loop over it), `fast`
(fast.py: padded, graphed on CUDA, eager here) and `grow` (grow.py: progressive with every text at its own
length). For every pair the contract says "honoured" the suite asserts the results `plain` gives: steps, stop
reasons, histories, step counts per length, longest lengths, and the vectors to a stated tolerance (other
matmul shapes round differently, and training amplifies it: 1e-3 of the largest |v| for grow, 1e-4 for fast).
Where it says "refused", a one-line BadInputError naming the engine and the setting. Each option must change
`plain`'s outcome under the preset it runs with (`test_every_option_changes_an_outcome`), so an engine that
ignored it would fail its comparison. `make test` runs every preset as it is and every option once; the whole
matrix is `slow`; on CUDA (`-m gpu`) the whole matrix runs with CUDA graphs.

The tiny random model cannot be steered to natural text, so the texts start with tokens the model itself
generates from a random vector (reachable: they fit) and go on with natural text (which it rarely fits):
each text stops at its own length.
"""
import pytest
import torch

from cramlab.engine.decode import decode
from cramlab.engine.plain import cram
from cramlab.engine.settings import FIELD_NAMES, PRESETS, CramSettings
from cramlab.engine.step import CRAM_KEYWORDS, ENGINE_SUPPORT, PROGRESSIVE_KEYWORDS
from cramlab.errors import BadInputError
from cramlab.models.texts import get_texts
from cramlab.science.search import progressive

PRESET_NAMES = ("kit", "grid-2025", "progressive-2026")
#: option -> the change it makes (a function of the preset's settings, so every option changes something).
OPTIONS = {
    "as-is": lambda s: {},
    "patience": lambda s: {"patience": 3},
    "freeze_converged": lambda s: {"freeze_converged": not s.freeze_converged},
    "check_every": lambda s: {"check_every": 1 if s.check_every != 1 else 4},
    "carry_optimizer": lambda s: {"carry_optimizer": not s.carry_optimizer},
    "max_total_steps": lambda s: {"max_total_steps": 10},
    "layout": lambda s: {"layout": "sink-first" if s.layout == "mem-first" else "mem-first"},
    "protocol": lambda s: {"protocol": "hc" if s.protocol == "pc" else "pc"},
    "n_mem": lambda s: {"n_mem": 2},
    "step_tokens": lambda s: {"step_tokens": 2},
    "lr_schedule": lambda s: {"lr_schedule": "cosine", "warmup_steps": 2, "schedule_steps": 30, "lr_floor": 0.01},
    "keep_trajectory": lambda s: {},          # a keyword of progressive, not a setting (see `_progressive`)
}
CRAM_OPTIONS = ("as-is", "patience", "freeze_converged", "check_every", "layout", "protocol", "n_mem")
#: `make test` runs each preset as it is and each option under a preset whose outcome it changes (checked by
#: `test_every_option_changes_an_outcome`); the whole engines x presets x options matrix is `slow`.
WHERE = {"patience": "progressive-2026", "carry_optimizer": "kit", "max_total_steps": "progressive-2026",
         "keep_trajectory": "progressive-2026", "freeze_converged": "kit", "check_every": "kit", "layout": "kit",
         "protocol": "kit", "n_mem": "kit", "step_tokens": "kit", "lr_schedule": "kit"}
CORE = [(p, "as-is") for p in PRESET_NAMES] + list((WHERE[o], o) for o in OPTIONS if o != "as-is")
REST = [(p, o) for o in OPTIONS for p in PRESET_NAMES if (p, o) not in CORE]
CRAM_CORE = [(p, "as-is") for p in PRESET_NAMES] + [(WHERE[o], o) for o in CRAM_OPTIONS[1:]]
CRAM_REST = [(p, o) for o in CRAM_OPTIONS for p in PRESET_NAMES if (p, o) not in CRAM_CORE]
MAX_TOKENS = 5
_RUNS: dict = {}


def _staggered(lm, n=3, length=MAX_TOKENS):
    std = lm.model.get_input_embeddings().weight.float().std().item()
    v = torch.randn(n, 1, lm.spec.d, generator=torch.Generator().manual_seed(0)) * std * 20
    made = [d.token_ids for d in decode(lm, v.to(lm.spec.device), length)]
    natural = [t.token_ids for t in get_texts(lm.tokenizer, "unseen", length, n_texts=n, seed=1)]
    return [m[:k] + t[:length - k] for m, t, k in zip(made, natural, [2, 3, 5][:n])]


def _settings(preset, option):
    # progressive-2026 starts from uniform[0, 0.02) vectors, which need more steps to fit than randn ones
    steps = 30 if preset == "progressive-2026" else 10
    base = CramSettings.from_preset(preset, max_steps=steps, lr=1.0, warmup_steps=0, schedule_steps=10 * steps,
                                    start_tokens=2, max_total_steps=None if preset != "progressive-2026" else 10_000)
    return base.replace(**OPTIONS[option](base))


def _progressive(lm, rows, engine, preset, option):
    key = ("progressive", lm.spec.device, engine, preset, option)
    if key not in _RUNS:
        s = _settings(preset, option).replace(engine=engine)
        res = progressive(lm, rows, s, max_tokens=MAX_TOKENS, keep_trajectory=option == "keep_trajectory")
        _RUNS[key] = res
    return _RUNS[key]


def _cram(lm, rows, engine, preset, option, **kw):
    key = ("cram", lm.spec.device, engine, preset, option, tuple(kw))
    if key not in _RUNS:
        s = _settings(preset, option).replace(engine=engine)
        _RUNS[key] = cram(lm, [r[:4] for r in rows], s, progress=False, **kw)
    return _RUNS[key]


def progressive_outcome(res):
    """What the contract says equal, vectors aside: per text, lengths, reasons, steps per length."""
    return [(t.longest_tokens, t.failed_tokens, t.stop_reason, t.total_steps,
             [(r["n_tokens"], r["steps"], r["converged"]) for r in t.records], len(t.trajectory), t.greedy_exact)
            for t in res.texts]


def cram_outcome(results):
    return [(r.steps, r.stop_reason, r.converged, r.failed_step, [(h[0], h[2]) for h in r.history],
             r.decoded_text, int(r.optimizer.steps[0])) for r in results]


def assert_close_vectors(x, y, tol):
    """Equal to `tol` of the vectors' largest entry: the engines run other matmul shapes, which round differently,
    and steps at lr 1.0 amplify that (seen on the CPU: 1.4e-3 on |v| ~ 12 between grow and the per-length loop
    after 40 steps, 9.4e-5 on |v| ~ 7 between fast and plain after 10)."""
    x, y = x.detach().float().cpu(), y.detach().float().cpu()
    assert x.shape == y.shape
    assert float((x - y).abs().max()) <= tol * max(1.0, float(x.abs().max())), float((x - y).abs().max())


def assert_same_progressive(a, b, tol):
    assert progressive_outcome(a) == progressive_outcome(b)
    for x, y in zip(a.texts, b.texts):
        assert (x.vectors is None) == (y.vectors is None)
        if x.vectors is not None:
            assert_close_vectors(x.vectors, y.vectors, tol)
        for vx, vy in zip(x.trajectory, y.trajectory):
            assert_close_vectors(vx, vy, tol)


def assert_same_cram(a, b, tol):
    assert cram_outcome(a) == cram_outcome(b)
    for x, y in zip(a, b):
        assert_close_vectors(x.vectors, y.vectors, tol)
        assert [h[1] for h in x.history] == pytest.approx([h[1] for h in y.history], rel=tol)


@pytest.fixture(scope="module")
def rows(tiny):
    return _staggered(tiny)


# --- the table itself ------------------------------------------------------------------------------------

def test_every_setting_and_keyword_has_a_verdict_for_every_engine():
    names = set(FIELD_NAMES) | set(CRAM_KEYWORDS) | set(PROGRESSIVE_KEYWORDS)
    assert set(ENGINE_SUPPORT) == {"plain", "fast", "grow"}
    for engine, table in ENGINE_SUPPORT.items():
        assert set(table) == names, (engine, names ^ set(table))
        for name, verdict in table.items():
            assert verdict == "honoured" or verdict.startswith(("refused: ", "not read: ")), (engine, name, verdict)


def test_the_options_cover_every_setting_a_preset_or_option_changes():
    """Each field grow or fast honours and a preset changes is exercised by the preset cases; the others by an
    option, or used by every run (the optimiser's, the seed, the target), or recorded (preset, overrides)."""
    by_preset = {f for p in PRESETS.values() for f in FIELD_NAMES if getattr(p, f) != getattr(PRESETS["kit"], f)}
    by_option = {k for opt in OPTIONS.values() for k in opt(PRESETS["kit"]) | opt(PRESETS["progressive-2026"])}
    every_run = {"max_steps", "lr", "betas", "weight_decay", "eps", "seed", "target_accuracy", "engine",
                 "preset", "overrides", "sink_token_id", "dtype"}
    honoured = {n for t in ENGINE_SUPPORT.values() for n, v in t.items() if v == "honoured" and n in FIELD_NAMES}
    assert honoured <= by_preset | by_option | every_run, honoured - (by_preset | by_option | every_run)


# --- grow against the per-length loop ----------------------------------------------------------------------

@pytest.mark.parametrize("preset,option", CORE + [pytest.param(*c, marks=pytest.mark.slow) for c in REST])
def test_grow_equals_the_per_length_loop(tiny, rows, preset, option):
    plain = _progressive(tiny, rows, "plain", preset, option)
    grown = _progressive(tiny, rows, "fast", preset, option)
    assert_same_progressive(plain, grown, tol=1e-3)


@pytest.mark.parametrize("preset,option", CRAM_CORE + [pytest.param(*c, marks=pytest.mark.slow) for c in CRAM_REST])
def test_fast_equals_plain(tiny, rows, preset, option):
    assert_same_cram(_cram(tiny, rows, "plain", preset, option), _cram(tiny, rows, "fast", preset, option), 1e-4)


@pytest.mark.parametrize("engine", ["plain", "fast"])
def test_cram_keywords_are_honoured_by_both_loops(tiny, rows, engine):
    """init_vectors, init_optimizer, text_ids, decode, callback: the fast loop gives what the plain one gives."""
    first = _cram(tiny, rows, "plain", "kit", "as-is")
    seen = []
    kw = dict(init_vectors=torch.stack([r.vectors for r in first]),
              init_optimizer=_stack([r.optimizer for r in first]), text_ids=["a", "b", "c"], decode=False,
              callback=lambda p: seen.append((p.step, p.active, p.n_done)))
    ref_seen = []
    ref = cram(tiny, [r[:4] for r in rows], _settings("kit", "as-is").replace(engine="plain"), progress=False,
               **kw | {"callback": lambda p: ref_seen.append((p.step, p.active, p.n_done))})
    res = cram(tiny, [r[:4] for r in rows], _settings("kit", "as-is").replace(engine=engine), progress=False, **kw)
    assert seen == ref_seen and len(seen) >= 1
    assert [r.text_id for r in res] == ["a", "b", "c"] and all(r.decoded_text is None for r in res)
    assert_same_cram(ref, res, 1e-4)


def _mixed(lm, rows, engine, preset):
    """`mixed_lengths`: the texts cut to 3, 4 and 5 tokens, crammed in one right-padded batch."""
    s = _settings(preset, "as-is").replace(engine=engine)
    return cram(lm, [r[:n] for r, n in zip(rows, (3, 4, 5))], s, progress=False, mixed_lengths=True)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_mixed_lengths_fast_equals_plain(tiny, rows, preset):
    plain = _mixed(tiny, rows, "plain", preset)
    assert [(r.n_tokens, len(r.token_ids)) for r in plain] == [(3, 3), (4, 4), (5, 5)]
    assert_same_cram(plain, _mixed(tiny, rows, "fast", preset), 1e-4)


def _stack(states):
    from cramlab.engine.step import OptimizerState
    return OptimizerState(*(torch.cat([getattr(st, k) for st in states]) for k in ("exp_avg", "exp_avg_sq", "steps")))


def test_grow_refuses_a_callback_in_one_line(tiny, rows):
    with pytest.raises(BadInputError) as err:
        progressive(tiny, rows, engine="fast", max_tokens=MAX_TOKENS, callback=lambda n, results: None)
    assert "\n" not in str(err.value) and "grow" in str(err.value) and "callback" in str(err.value)
    assert ENGINE_SUPPORT["grow"]["callback"].startswith("refused: ")


def test_auto_with_a_callback_runs_the_per_length_loop_and_calls_it_per_length(tiny, rows):
    calls = []
    res = progressive(tiny, rows, _settings("kit", "as-is"), max_tokens=MAX_TOKENS,
                      callback=lambda n, results: calls.append((n, [r.steps for r in results])))
    plain = _progressive(tiny, rows, "plain", "kit", "as-is")
    assert progressive_outcome(res) == progressive_outcome(plain)
    assert [n for n, _ in calls] == list(range(2, 2 + len(calls)))


def test_every_option_changes_an_outcome(tiny, rows):
    """Sensitivity: each option changes plain's outcome under the preset `make test` runs it with, so an engine
    that ignored the option would fail its comparison above (a broken grow that ignored patience did)."""
    for option, preset in WHERE.items():
        with_option = _progressive(tiny, rows, "plain", preset, option)
        if option == "keep_trajectory":
            assert sum(len(t.trajectory) for t in with_option.texts) > 0
            continue
        as_is = _progressive(tiny, rows, "plain", preset, "as-is")
        assert progressive_outcome(with_option) != progressive_outcome(as_is) or any(
            (x.vectors is None) != (y.vectors is None) or x.vectors is not None and not torch.allclose(
                x.vectors, y.vectors, rtol=1e-2, atol=1e-2) for x, y in zip(with_option.texts, as_is.texts)), option
    for option in CRAM_OPTIONS[1:]:
        assert cram_outcome(_cram(tiny, rows, "plain", WHERE[option], option)) != cram_outcome(
            _cram(tiny, rows, "plain", WHERE[option], "as-is")), option


def test_the_cases_stop_texts_at_different_lengths(tiny, rows):
    res = _progressive(tiny, rows, "plain", "progressive-2026", "as-is")
    assert len(set(res.longest_tokens)) >= 2 and max(res.longest_tokens) >= 3, res.longest_tokens


# --- the same on CUDA, graphed -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_cuda():
    from cramlab.models.load import load_model
    return load_model("tiny-llama", device="cuda", dtype="float32")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make test-gpu)")
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_grow_equals_the_per_length_loop_on_cuda_graphed(tiny_cuda, preset, option):
    rows = _staggered(tiny_cuda)
    assert_same_progressive(_progressive(tiny_cuda, rows, "plain", preset, option),
                            _progressive(tiny_cuda, rows, "fast", preset, option), tol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make test-gpu)")
@pytest.mark.parametrize("option", CRAM_OPTIONS)
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_fast_equals_plain_on_cuda_graphed(tiny_cuda, preset, option):
    rows = _staggered(tiny_cuda)
    assert_same_cram(_cram(tiny_cuda, rows, "plain", preset, option), _cram(tiny_cuda, rows, "fast", preset, option),
                     1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make test-gpu)")
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_mixed_lengths_fast_equals_plain_on_cuda_graphed(tiny_cuda, preset):
    rows = _staggered(tiny_cuda)
    assert_same_cram(_mixed(tiny_cuda, rows, "plain", preset), _mixed(tiny_cuda, rows, "fast", preset), 1e-3)

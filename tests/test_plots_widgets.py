"""Plots, widgets, exercises, surprisal and the notebook recorder, without running a notebook (seconds)."""
import json
import math
import sys

import plotly.graph_objects as go
import pytest

from cramlab import capacity as cap
from cramlab.cli.notebooks import _parse_param
from cramlab.engine.plain import CramProgress
from cramlab.errors import BadInputError, CramlabError
from cramlab.lab import exercises, plots, widgets
from cramlab.lab.notebook_runner import Recorder, _plain, fast_values, find_notebooks, notebook_parameters, record
from cramlab.science.report import table1_row_from_grid
from cramlab.science.sweep import SweepConfig

# --- plots ------------------------------------------------------------------------------------------------

def test_capacity_bar_chart_has_one_bar_per_model_and_marks_the_highlight():
    rows = cap.capacity_table()
    fig = plots.capacity_bar_chart(rows, highlight="pythia-160m")
    assert isinstance(fig, go.Figure)
    xs = [x for trace in fig.data for x in trace.x]
    ys = [y for trace in fig.data for y in trace.y]
    assert sorted(xs) == sorted(r["model"] for r in rows)
    assert dict(zip(xs, ys))["llama-3.1-8b"] == 3862
    widths = {x: w for trace in fig.data for x, w in zip(trace.x, trace.marker.line.width)}
    assert widths["pythia-160m"] > 0 and widths["smollm2-135m"] == 0


def test_surprisal_chart_bars_and_total_in_title():
    fig = plots.surprisal_chart(["a", "b", "c"], [1.0, 2.0, 3.0], title="t", predicted=[True, False, True])
    assert list(fig.data[0].y) == [1.0, 2.0, 3.0]
    assert "6.0 bits in 3 tokens" in fig.layout.title.text
    assert fig.data[0].marker.color[0] != fig.data[0].marker.color[1]


def test_source_comparison_chart_means():
    fig = plots.source_comparison_chart({"unseen": [2.0, 4.0], "random": [10.0]})
    bars = {t.x[0]: t.y[0] for t in fig.data if t.type == "bar"}
    assert bars == {"unseen": 3.0, "random": 10.0}


def test_live_plot_follows_cram_progress():
    live = plots.LiveCramPlot("t", max_steps=100)
    live.update(CramProgress(step=10, active=[0, 1], loss_per_token_nats=[2.0, 4.0], accuracy=[0.5, 1.0],
                             n_done=0, n_texts=2))
    live.update(CramProgress(step=20, active=[], loss_per_token_nats=[], accuracy=[], n_done=2, n_texts=2))
    live.update(CramProgress(step=30, active=[0], loss_per_token_nats=[1.0], accuracy=[0.25], n_done=1, n_texts=2))
    assert live.steps == [10, 30]
    assert live.loss == [3.0, 1.0] and live.accuracy == [0.75, 0.25]
    assert list(live.figure.data[0].x) == [10, 30] and list(live.figure.data[1].y) == [0.75, 0.25]


def test_live_plot_is_a_figure_widget_when_widgets_work():
    assert isinstance(plots.LiveCramPlot().figure, go.FigureWidget)


def test_live_plot_as_cram_callback_on_tiny_model(tiny):
    from cramlab.engine.plain import cram
    from cramlab.models.texts import get_texts
    live = plots.LiveCramPlot()
    texts = get_texts(tiny.tokenizer, "unseen", 6, n_texts=2)
    cram(tiny, texts, max_steps=20, check_every=5, patience=1000, callback=live.update, progress=False, decode=False)
    assert live.steps == [5, 10, 15, 20]
    assert all(math.isfinite(v) and v > 0 for v in live.loss)


def test_history_chart_one_curve_per_label():
    fig = plots.history_chart({"a": [[1, 2.0, 0.1], [2, 1.0, 0.5]], "b": [[1, 3.0, 0.0]]})
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].y) == [0.1, 0.5]


def _records():
    return [dict(n_tokens=8, mean_accuracy=1.0, std_accuracy=0.0, fits=True,
                 results=[dict(n_tokens=8, teacher_forced_accuracy=1.0, gain_tokens=6.0, info_gain_nats=30.0)] * 2),
            dict(n_tokens=16, mean_accuracy=0.75, std_accuracy=0.25, fits=False,
                 results=[dict(n_tokens=16, teacher_forced_accuracy=1.0, gain_tokens=12.0, info_gain_nats=50.0),
                          dict(n_tokens=16, teacher_forced_accuracy=0.5, gain_tokens=4.0, info_gain_nats=40.0)])]


def test_accuracy_vs_length_chart_means_and_dots():
    fig = plots.accuracy_vs_length_chart(_records(), threshold=0.99, paper_max_tokens=38)
    assert list(fig.data[0].x) == [8, 16] and list(fig.data[0].y) == [1.0, 0.75]
    assert len(fig.data[1].x) == 4
    assert len(fig.layout.shapes) == 2       # the threshold and the paper's Max


def test_fit_line_and_constant_gain():
    slope, intercept = plots.fit_line([10, 20, 30], [5, 15, 25])
    assert slope == pytest.approx(1.0) and intercept == pytest.approx(-5.0)
    assert all(math.isnan(v) for v in plots.fit_line([1, 1], [2, 3]))
    points = [dict(baseline_ce_nats=100, final_ce_nats=0, converged=True),
              dict(baseline_ce_nats=300, final_ce_nats=120, converged=False),
              dict(baseline_ce_nats=400, final_ce_nats=240, converged=False)]
    assert plots.constant_gain_nats(points) == pytest.approx(170.0)
    assert plots.constant_gain_nats(points[:1]) == pytest.approx(100.0)   # all fit: every text counts


def test_info_gain_scatter_draws_slope_one_line_through_gain():
    points = [dict(baseline_ce_nats=300, final_ce_nats=120, converged=False, source="unseen", n_tokens=32,
                   teacher_forced_accuracy=0.5),
              dict(baseline_ce_nats=500, final_ce_nats=300, converged=False, source="random", n_tokens=32,
                   teacher_forced_accuracy=0.2)]
    fig = plots.info_gain_scatter(points)
    names = [t.name for t in fig.data]
    assert names[:2] == ["unseen", "random"]
    line = next(t for t in fig.data if t.name.startswith("slope 1"))
    (x0, x1), (y0, y1) = line.x, line.y
    assert (x0, y0) == (pytest.approx(190.0), 0.0)
    assert (y1 - y0) / (x1 - x0) == pytest.approx(1.0)


def test_tokens_vs_n_mem_chart_log_axes():
    fig = plots.tokens_vs_n_mem_chart(ours={1: 10.0, 2: 20.0}, paper={"p": {1: 80, 2: 192}},
                                      capacity={"c": {1: 591.0, 2: 1182.0}})
    assert len(fig.data) == 3 and fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert list(fig.data[-1].y) == [10.0, 20.0]


def test_text_table_formats_and_aligns():
    out = plots.text_table([dict(a="x", b=1.23456, c=None), dict(a="longer", b=2.0, c=True)], ["a", "b", "c"],
                           formats={"b": ".2f"}, headers={"b": "B"})
    lines = out.splitlines()
    assert lines[0].split() == ["a", "B", "c"]
    assert "1.23" in lines[2] and "-" in lines[2].split()[-1]
    assert len({len(line) for line in lines}) == 1


def test_table1_row_from_grid_averages_texts_that_did_not_fit():
    grid = dict(records=_records(), max_tokens=8)
    row = table1_row_from_grid(grid, "smollm2-135m", 576, 49152, threshold=0.99)
    assert row["max_tokens"] == 8 and row["n_not_fit"] == 1
    assert row["gain_tokens"] == 4.0 and row["info_gain_nats"] == 40.0
    assert row["capacity_tokens"] == 591
    assert row["capacity_utilisation"] == pytest.approx(4.0 / cap.capacity_tokens(576, 49152))
    all_fit = table1_row_from_grid(dict(records=_records()[:1], max_tokens=8), "m", 576, 49152)
    assert all_fit["gain_tokens"] is None and all_fit["capacity_utilisation"] is None


# --- widgets ------------------------------------------------------------------------------------------------

def test_capacity_handler_follows_the_math():
    s = widgets.capacity_summary("smollm2-135m", "bfloat16", 1)
    assert s["capacity_tokens"] == 591 and s["capacity_bits"] == 576 * 16
    assert widgets.capacity_summary("smollm2-135m", "float32", 2)["capacity_bits"] == 576 * 32 * 2
    assert "591 tokens" in widgets.describe_capacity("smollm2-135m", "bfloat16", 1)
    assert widgets.describe_capacity("no-such-model", "bfloat16", 1).startswith("cannot compute")


def test_cram_choice_handler():
    text = widgets.describe_cram_choice("smollm2-135m", 59, 1, "unseen")
    assert "10.0% of the theoretical capacity of 591 tokens" in text
    assert "cannot be steered" in widgets.describe_cram_choice("tiny-llama", 8)
    assert "downloaded" in widgets.describe_cram_choice("pythia-160m", 8)


def test_controls_follow_widget_changes(capsys):
    controls = widgets.capacity_controls("smollm2-135m", "bfloat16", 1)
    assert controls.values() == {"model": "smollm2-135m", "dtype": "bfloat16", "n_mem": 1}
    controls.widgets["n_mem"].value = 2                      # what a learner does in the front end
    assert f"{cap.capacity_of('smollm2-135m', n_mem=2).capacity_tokens:,} tokens" in controls.output.value
    assert controls.values()["n_mem"] == 2
    text = controls.set(model="pythia-160m", n_mem=1)
    assert "787 tokens" in text and controls.widgets["model"].value == "pythia-160m"
    assert controls.show() == text
    assert "787 tokens" in capsys.readouterr().out
    with pytest.raises(KeyError):
        controls.set(colour="red")


def test_capacity_chart_follows_the_controls():
    controls = widgets.capacity_controls("smollm2-135m", "bfloat16", 1, chart=True)
    fig = controls.figure
    assert fig in controls.box.children                       # shown under the controls

    def bar(model):
        for trace in fig.data:
            if model in trace.x:
                i = list(trace.x).index(model)
                return trace.y[i], trace.marker.line.width[i]
        raise AssertionError(model)

    assert bar("smollm2-135m") == (591, 3) and bar("pythia-160m")[1] == 0
    controls.widgets["n_mem"].value = 4                        # a learner moves the slider
    assert bar("smollm2-135m")[0] == cap.capacity_of("smollm2-135m", n_mem=4).capacity_tokens
    assert "of 4 input vectors" in fig.layout.title.text
    controls.set(model="pythia-160m", dtype="float32", n_mem=1)
    assert bar("pythia-160m") == (cap.capacity_of("pythia-160m", bits=32).capacity_tokens, 3)
    assert bar("smollm2-135m")[1] == 0 and "32 bits" in fig.layout.title.text
    assert widgets.capacity_controls("smollm2-135m").figure is None      # no chart unless asked


def test_controls_accept_values_outside_the_preset_choices():
    controls = widgets.cram_controls("tiny-llama", n_tokens=300, n_mem=12)
    slider = controls.widgets["n_tokens"]
    assert slider.value == 300 and slider.max >= 300
    assert controls.values()["n_mem"] == 12


def test_controls_without_ipywidgets_still_print(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)     # import ipywidgets -> ImportError
    controls = widgets.cram_controls("smollm2-135m", 16)
    assert controls.box is None and controls.widgets == {}
    assert controls.values()["n_tokens"] == 16
    controls.set(n_tokens=32)
    assert controls.values()["n_tokens"] == 32
    controls.show()
    assert "32 unseen tokens" in capsys.readouterr().out


class _Decoded:
    def __init__(self, greedy_exact):
        self.greedy_exact, self.teacher_forced_accuracy = greedy_exact, 1.0 if greedy_exact else 0.9
        self.first_mismatch = None if greedy_exact else 3


# --- exercises ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("check, right, wrong", [
    (lambda a: exercises.check_bits_per_value("float16", a), 16, 32),
    (lambda a: exercises.check_capacity_tokens("pythia-160m", a), 768 * 16 / math.log2(50304), 700),
    (lambda a: exercises.check_capacity_tokens("llama-3.2-1b", a, n_mem=4), 7724, 1931),
    (lambda a: exercises.check_bits_per_token(49152, a), math.log2(49152), 16),
    (lambda a: exercises.check_utilisation("pythia-160m", a), 0.090, 0.2),
    (lambda a: exercises.check_remaining_ce(500.0, 200.0, a), 300.0, 700.0),
    (lambda a: exercises.check_remaining_ce(100.0, 200.0, a), 0.0, -100.0),
    (lambda a: exercises.check_longest_text(200.0, 2.5, a), 80, 40),
    (lambda a: exercises.check_compression_ratio(7168, 16, a), 448, 7168),
    (lambda a: exercises.check_greedy_exact(a, _Decoded(greedy_exact=False)), "no", "yes"),
    (lambda a: exercises.check_greedy_exact(a, _Decoded(greedy_exact=True)), "yes", "no"),
    (lambda a: exercises.check_better_layout(a, {"sink-first": 1.0, "mem-first": 0.5}), "sink-first",
     "mem-first"),
    (lambda a: exercises.check_better_layout(a, {"sink-first": 0.25, "mem-first": 0.75}), "mem-first",
     "sink-first"),
    (lambda a: exercises.check_scaling(a), "yes", "no"),
])
def test_checks_accept_the_right_answer_only(check, right, wrong, capsys):
    assert check(right) is True
    assert "✔" in capsys.readouterr().out
    assert check(wrong) is False
    assert "✘" in capsys.readouterr().out
    assert check(...) is False
    assert "not answered yet" in capsys.readouterr().out
    assert check("not a number at all") is False


class _Spec:
    d = 576


class _Surprisal:
    total_bits = 212.0


class _Cram:
    baseline_ce_nats, final_ce_nats = 69.0, 1.5


class _Progressive:
    mean_tokens = 22.7


class _PCA:
    def n_components(self, share):
        return 5 if share == 0.99 else 2


_LENGTH_ROWS = [dict(n_tokens=8, mean_accuracy=1.0), dict(n_tokens=16, mean_accuracy=0.95)]


@pytest.mark.parametrize("check, right, wrong", [
    (lambda a: exercises.check_vector_size(a, _Spec()), 576, 577),
    (lambda a: exercises.check_total_bits(a, _Surprisal()), 212.0, 212.0 * 1.05),
    (lambda a: exercises.check_cheapest_source(a, {"unseen": 7.3, "random": 12.1}), "unseen", "random"),
    (lambda a: exercises.check_info_gain_bits(a, _Cram()), 67.5 / math.log(2), 67.5),      # nats are not bits
    (lambda a: exercises.check_utilisation_of_row(a, dict(gain_tokens=10.5, capacity_tokens=591)), 10.5 / 591,
     10.5 / 591 * 1.05),
    (lambda a: exercises.check_n_jobs(a, SweepConfig(models=["m"], sources=["unseen", "random"],
                                                     layouts=["sink-first", "mem-first"], lengths=[8, 16],
                                                     n_texts=3)), 24, 12),
    (lambda a: exercises.check_progressive_mean(a, _Progressive()), 22.7, 22.7 * 1.05),
    (lambda a: exercises.check_components(a, _PCA()), 5, 2),
    (lambda a: exercises.check_utilisation("pythia-160m", a), 0.090, 0.090 * 1.05),
    (lambda a: exercises.check_longest_text(200.0, 2.5, a), 80, 80 * 1.05),
    (lambda a: exercises.check_capacity_tokens("pythia-160m", a), 768 * 16 / math.log2(50304),
     768 * 16 / math.log2(50304) + 1.5),
])
def test_more_checks_accept_the_right_answer_and_refuse_a_near_miss(check, right, wrong, capsys):
    """Every check_* a notebook calls: the reference passes, an answer 5 % off (or one unit off) fails."""
    assert check(right) is True, capsys.readouterr().out
    assert check(wrong) is False, capsys.readouterr().out
    assert check(...) is False


def test_max_tokens_check_follows_the_paper_rule(capsys):
    assert exercises.check_max_tokens(8, _LENGTH_ROWS) is True          # 16 has mean 0.95 < 0.99
    assert exercises.check_max_tokens(16, _LENGTH_ROWS) is False
    assert exercises.check_max_tokens(None, [dict(n_tokens=8, mean_accuracy=0.5)]) is True   # nothing fits
    assert exercises.check_max_tokens(8, [dict(n_tokens=8, mean_accuracy=0.5)]) is False


def test_scaling_check_follows_the_series():
    assert exercises.check_scaling("yes", {"m": {1: 80, 2: 192, 4: 384, 8: 640, 16: 1280}})
    assert exercises.check_scaling("no", {"m": {1: 512, 2: 600, 4: 650, 8: 700, 16: 720}})   # saturating
    assert not exercises.check_scaling("yes", {"m": {1: 512, 2: 600, 4: 650, 8: 700, 16: 720}})


def test_own_loop_check_compares_the_trajectories(capsys):
    ref = type("R", (), {"n_scored": 8, "history": [[1, 5.0, 0.0], [2, 4.0, 0.25], [3, 3.0, 0.5]]})()
    assert exercises.check_own_loop([[5.0, 0.0], [4.001, 0.25], [3.0, 0.5]], ref)
    assert not exercises.check_own_loop([[5.0, 0.0], [4.5, 0.25], [3.0, 0.5]], ref)      # loss departs at step 2
    assert "step 2" in capsys.readouterr().out
    assert not exercises.check_own_loop([[5.0, 0.0], [4.0, 0.5], [3.0, 0.5]], ref)       # two tokens off
    assert not exercises.check_own_loop([], ref) and "not answered" in capsys.readouterr().out


def test_prefix_check_decodes_the_prefix(tiny):
    import torch

    from cramlab.engine.decode import decode
    vector = torch.randn(1, tiny.spec.d, generator=torch.Generator().manual_seed(0))
    ids = decode(tiny, vector, 6).token_ids              # what these vectors give back, by construction
    assert exercises.check_prefix_fits("yes", tiny, vector, ids, 6)
    other = [(t + 1) % tiny.spec.vocab_size for t in ids]
    assert exercises.check_prefix_fits("no", tiny, vector, other, 6)
    assert not exercises.check_prefix_fits("yes", tiny, vector, ids, 1)    # nothing shorter to test


def test_result_based_checks():
    class Result:
        baseline_ce_nats, final_ce_nats = 60.0, 4.0

    assert exercises.check_info_gain_bits(56 / math.log(2), Result())
    assert not exercises.check_info_gain_bits(56, Result())
    assert exercises.check_vector_size(576, type("Spec", (), {"d": 576})())
    assert exercises.check_cheapest_source("natural", {"natural": 1.0, "unseen": 3.0, "random": 9.0})
    assert not exercises.check_cheapest_source("random", {"natural": 1.0, "unseen": 3.0, "random": 9.0})
    assert not exercises.check_cheapest_source("poetry", {"natural": 1.0})


def test_check_max_tokens_including_no_fit():
    rows = _records()
    assert exercises.max_tokens_that_fit(rows) == 8
    assert exercises.check_max_tokens(8, rows) and not exercises.check_max_tokens(16, rows)
    none_fit = [dict(n_tokens=8, mean_accuracy=0.5)]
    assert exercises.check_max_tokens(None, none_fit) and not exercises.check_max_tokens(8, none_fit)
    assert not exercises.check_max_tokens(..., rows)


def test_check_total_bits_from_surprisal(tiny):
    from cramlab.science.surprisal import token_surprisal
    s = token_surprisal(tiny, "the cat sat on the mat")[0]
    assert exercises.check_total_bits(sum(s.surprisal_nats) / math.log(2), s)
    assert not exercises.check_total_bits(sum(s.surprisal_nats), s)


# --- surprisal -------------------------------------------------------------------------------------------

def test_surprisal_equals_the_cram_baseline(tiny):
    from cramlab.engine.plain import cram
    from cramlab.models.texts import get_texts
    from cramlab.science.surprisal import token_surprisal
    texts = get_texts(tiny.tokenizer, "unseen", 10, n_texts=2)
    scores = token_surprisal(tiny, texts)
    results = cram(tiny, texts, max_steps=1, progress=False, decode=False)
    for s, r, t in zip(scores, results, texts):
        assert s.token_ids == t.token_ids and len(s.surprisal_nats) == 10
        assert s.total_nats == pytest.approx(r.baseline_ce_nats, rel=1e-4)
        assert s.top1_accuracy == pytest.approx(r.baseline_accuracy)
        assert s.total_bits == pytest.approx(s.total_nats / math.log(2))
    assert json.loads(json.dumps(scores[0].to_dict()))["text_id"] == texts[0].text_id


def test_surprisal_of_a_string_and_bad_input(tiny):
    from cramlab.science.surprisal import token_surprisal
    s = token_surprisal(tiny, "Hello world")[0]
    assert s.n_tokens == len(tiny.tokenizer("Hello world", add_special_tokens=False)["input_ids"])
    assert "".join(s.tokens) == "Hello world"
    with pytest.raises(BadInputError):
        token_surprisal(tiny, [])
    with pytest.raises(BadInputError):
        token_surprisal(tiny.model, "needs a tokenizer")


# --- recording and finding notebooks ------------------------------------------------------------------------

def test_recorder_writes_json_after_every_call(tmp_path, monkeypatch):
    import numpy as np
    import torch
    path = tmp_path / "sub" / "figures.json"
    rec = Recorder(str(path))
    rec("a", np.float32(1.5))
    assert json.loads(path.read_text()) == {"a": 1.5}
    rec("b", {1: torch.tensor(2.0), "c": [True, float("nan")]})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": {"1": 2.0, "c": [True, None]}}
    assert Recorder(str(path)).figures["a"] == 1.5           # a new recorder keeps what is there
    monkeypatch.setenv("CRAMLAB_RECORD_PATH", str(tmp_path / "env.json"))
    record("x", 3)
    assert json.loads((tmp_path / "env.json").read_text()) == {"x": 3}
    monkeypatch.delenv("CRAMLAB_RECORD_PATH")
    memory = Recorder("")
    memory("y", 4)
    assert memory.path is None and memory.figures == {"y": 4}
    with pytest.raises(BadInputError):
        memory("", 1)


def test_plain_turns_results_into_json():
    class WithDict:
        def to_dict(self):
            return {"k": (1, 2)}
    assert _plain(WithDict()) == {"k": [1, 2]}
    assert _plain(float("inf")) is None


def test_series_is_found_in_order_with_mode_parameters():
    paths = find_notebooks()
    stems = [p.stem for p in paths]
    assert stems[:7] == ["00_welcome", "01_bits_in_a_vector", "02_how_surprising_is_text", "03_first_cram",
                         "04_how_many_tokens_fit", "05_capacity_is_entropy", "06_more_vectors"]
    assert [p.stem for p in find_notebooks(only=["3", "04_how_many_tokens_fit"])] == ["03_first_cram",
                                                                                    "04_how_many_tokens_fit"]
    with pytest.raises(BadInputError, match="no notebook matches 42"):
        find_notebooks(only=["42"])
    nb03 = paths[3]
    assert notebook_parameters(nb03, "full") == {}
    assert notebook_parameters(nb03, "fast") == {}          # its fast budget is its own `fast` cell
    fast = fast_values(nb03)
    assert fast["lr"] == 0.1 and 8 <= fast["n_tokens"] <= 16
    assert notebook_parameters(nb03, "smoke")["model"] == "tiny-llama"
    with pytest.raises(BadInputError):
        notebook_parameters(nb03, "turbo")


def test_committed_notebooks_are_clean():
    """No outputs except the NBVAL_CHECK_OUTPUT cells; a parameters cell right after the imports."""
    import nbformat
    for path in find_notebooks():
        if int(path.stem[:2]) > 6:
            continue
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        # [Colab-only install cell], the imports, then the parameters cell
        at = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
        assert at in (1, 2) and "import" in code[at - 1].source and "parameters" not in code[at - 1].source, path.name
        assert at == 1 or "google.colab" in code[0].source, path.name
        params = code[at]
        assert "record_path" in params.source and "fast" in params.source
        for c in code:
            if c.source.startswith("# NBVAL_CHECK_OUTPUT"):
                assert c.outputs, f"{path.name}: checked cell without its expected output"
            else:
                assert not c.outputs and c.execution_count is None, f"{path.name}: stray output"
        assert "check_" in "".join(c.source for c in code), f"{path.name}: no exercises"
        # papermill must read every line of the parameters cell (an "=" in a comment hides the name)
        import re

        import papermill
        assert list(papermill.inspect_notebook(str(path))) == re.findall(r"^(\w+) =", params.source, re.M)


def test_param_parsing():
    assert _parse_param("n_tokens=12") == ("n_tokens", 12)
    assert _parse_param("lengths=[8,16]") == ("lengths", [8, 16])
    assert _parse_param("model=tiny-llama") == ("model", "tiny-llama")
    with pytest.raises(BadInputError):
        _parse_param("n_tokens")


# --- notebook 08's figures ----------------------------------------------------------------------------------

def test_progressive_steps_chart_one_line_per_text():
    texts = [dict(text_id="a", records=[dict(n_tokens=2, steps=30), dict(n_tokens=3, steps=5)]),
             dict(text_id="b", records=[dict(n_tokens=2, steps=40)])]
    fig = plots.progressive_steps_chart(texts)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == [2, 3] and list(fig.data[0].y) == [30, 5]
    assert fig.layout.xaxis.title.text == "length N (tokens)"


def test_attention_share_chart_bars_per_layer_and_the_sink():
    crammed = dict(mem_share=[0.1, 0.6], sink_share=[0.8, 0.2])
    fig = plots.attention_share_chart(crammed, dict(mem_share=[0.05, 0.04], sink_share=[0.9, 0.9]))
    assert [t.name for t in fig.data] == ["trained vector", "random vector", "sink token"]
    assert list(fig.data[0].y) == [0.1, 0.6] and list(fig.data[1].y) == [0.05, 0.04]
    assert list(fig.data[2].y) == [0.8, 0.2] and list(fig.data[0].x) == [0, 1]
    assert len(plots.attention_share_chart(crammed).data) == 2           # no baseline: no random bars


def test_explained_variance_chart_cumulative_with_the_share_line():
    fig = plots.explained_variance_chart(dict(cumulative=[0.9, 0.995, 1.0]), share=0.99)
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [0.9, 0.995, 1.0]
    assert fig.layout.shapes[0].y0 == 0.99


def test_own_text_crams_what_is_typed_and_puts_the_bytes_side_by_side(tiny, capsys):
    own = widgets.OwnText(tiny, "The ferry clock struck nine over the harbour.", max_steps=2, lr=0.1)
    f = own.run()
    from cramlab.models.texts import encode
    n = len(encode(tiny.tokenizer, "The ferry clock struck nine over the harbour."))
    assert f["n_tokens"] == min(n, widgets.OWN_TEXT_MAX_TOKENS) and f["steps"] == 2
    assert f["vector_bytes_bf16"] == 2 * tiny.spec.d and f["vector_bytes_fp32"] == 4 * tiny.spec.d
    assert f["utf8_bytes"] == len(f["text"].encode("utf-8"))
    assert f["greedy_exact"] is (f["decoded"] == f["text"])
    out = capsys.readouterr().out
    assert "one vector" in out and f"{f['n_tokens']} tokens" in out
    other = own.run("Another sentence entirely, typed into the box.")
    assert other["text"] != f["text"]
    with pytest.raises(CramlabError, match="empty"):
        own.run("   ")

"""Tests written to bite: each has a case whose answer is known before the code runs.

Owns: the checks `tools/mutation_check.py` showed missing (a flipped core rule that no older test caught gets
its test here; tests/README.md has the table), notebook 08's trajectory on the tiny model, and the check that
no placeholder repository address ships in a notebook. Does not: the notebooks' own runs (test_notebooks.py).
"""
import json
import random
import re
from pathlib import Path

import pytest
import torch
from repo_scripts import load_script

from cramlab.engine.decode import decode
from cramlab.engine.plain import cram
from cramlab.science.search import progressive

REPO = Path(__file__).resolve().parents[1]

# A repository address someone forgot to fill in: an upper-case stand-in owner (OWNER, USER, YOUR-ORG, ...)
# or an angle-bracket slot, in a github.com / Colab / raw.githubusercontent address.
PLACEHOLDER = re.compile(
    r"(?:github\.com|githubusercontent\.com|colab\.research\.google\.com/github)/"
    r"(?:OWNER|USER|USERNAME|YOUR[-_A-Z]*|ORG|<[^>/]+>|\{[^}/]+\}|\.\.\.)/", re.IGNORECASE)


def placeholder_addresses(text: str) -> list[str]:
    return [m.group(0) for m in PLACEHOLDER.finditer(text)]


def test_the_placeholder_detector_knows_a_placeholder_from_a_real_address():
    assert placeholder_addresses("git+https://github.com/OWNER/cramlab") == ["github.com/OWNER/"]
    assert placeholder_addresses("colab.research.google.com/github/your-org/cramlab/blob/main/x.ipynb")
    assert placeholder_addresses("https://github.com/<user>/cramlab")
    assert placeholder_addresses("https://github.com/yurakuratov/hidden_capacity") == []
    assert placeholder_addresses("https://github.com/FusionBrainLab/progressive_cramming") == []


def test_no_placeholder_repository_address_ships_in_a_notebook():
    """What a learner opens (.ipynb, sources and outputs) and what a developer edits (.py) name a real repository."""
    found = {}
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.*")):
        if path.suffix not in (".py", ".ipynb"):
            continue
        text = path.read_text()
        if path.suffix == ".ipynb":      # the JSON escapes nothing in an address, but read it as a notebook
            text = "\n".join("".join(c.get("source", "")) for c in json.loads(text)["cells"]) + text
        hits = placeholder_addresses(text)
        if hits:
            found[path.name] = sorted(set(hits))
    assert not found, f"placeholder repository addresses in notebooks: {found}"


def test_08_trajectory_holds_one_vector_per_fitted_length_each_decoding_its_prefix(tiny):
    """Notebook 08's trajectory (`keep_trajectory=True`): one vector per length that fitted, in order, the last
    being the text's final vectors, and each decodes greedily to exactly its length's prefix (a length fits
    when teacher-forced accuracy is 1.0, and then the greedy decode is the text: known before the run)."""
    ids = [random.Random(0).randrange(1000)] * 10     # one token repeated: what the tiny random model can be steered to
    s = progressive(tiny, [ids], start=2, step_tokens=2, max_tokens=10, lr=0.5, max_steps=30, keep_trajectory=True)
    t = s.texts[0]
    fitted = [r["n_tokens"] for r in t.records if r["teacher_forced_accuracy"] == 1.0]
    assert fitted == list(range(2, t.longest_tokens + 1, 2)) and len(fitted) >= 3, t.records
    assert len(t.trajectory) == len(fitted)
    assert torch.equal(t.trajectory[-1], t.vectors)
    for n, vectors in zip(fitted, t.trajectory):
        assert decode(tiny, vectors, n).token_ids == ids[:n], f"the trajectory's vector for {n} tokens"
    # the path moves: a vector that fits 2 tokens does not fit all 10 untouched (a length may still take none)
    assert not torch.equal(t.trajectory[0], t.trajectory[-1])


@pytest.mark.parametrize("layout,protocol", [("sink-first", "pc"), ("sink-first", "hc"), ("mem-first", "pc"),
                                             ("mem-first", "hc")])
def test_scored_positions_and_sink_token_agree_with_transformers_own_shifted_loss(tiny, layout, protocol):
    """The scored positions, the targets and the sink token, each checked against an answer built without the
    kit: the input [<|endoftext|>] [k vectors] [text] and labels on the text (all of it for pc; from the second
    token for hc, whose first token is given) go through transformers' own loss (position p predicts label p+1).
    The kit's final cross-entropy with its returned vectors must be that loss."""
    ids = random.Random(1).choices(range(1000), k=8)      # distinct tokens: targets shifted by one would differ
    r = cram(tiny, [ids], max_steps=2, lr=0.1, n_mem=2, layout=layout, protocol=protocol, progress=False,
             decode=False)[0]
    embed = tiny.model.get_input_embeddings()
    sink = tiny.tokenizer.convert_tokens_to_ids("<|endoftext|>")     # the document separator of the vocabulary
    with torch.no_grad():
        parts = [r.vectors.reshape(1, 2, -1).to(embed.weight.dtype), embed(torch.tensor([ids]))]
        if layout == "sink-first":
            parts.insert(0, embed(torch.tensor([[sink]])))
        x = torch.cat(parts, dim=1)
        n_prefix = x.shape[1] - len(ids)
        labels = torch.full((1, x.shape[1]), -100)
        labels[0, n_prefix:] = torch.tensor(ids)
        if protocol == "hc":
            labels[0, n_prefix] = -100                                 # given, not predicted
        expected = tiny.model(inputs_embeds=x, labels=labels).loss.item()
    assert r.n_scored == (8 if protocol == "pc" else 7)
    assert r.final_ce_per_token_nats == pytest.approx(expected, rel=1e-4, abs=1e-5)


def _strip_outputs_module():
    return load_script("tools/strip_outputs.py")


def test_pre_commit_output_strip_keeps_exactly_the_nbval_checked_outputs(tmp_path):
    """tools/strip_outputs.py (pre-commit): a made-up notebook loses the output of its plain cell and keeps the one
    nbval compares; the repository's notebooks are already as the hook leaves them (it changes none)."""
    import shutil

    import nbformat

    from cramlab.lab.notebook_runner import CHECKED_OUTPUT_MARK
    strip = _strip_outputs_module().strip
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("stream", name="stdout", text="42\n")
    nb.cells = [nbformat.v4.new_code_cell("print(41)", outputs=[out], execution_count=1),
                nbformat.v4.new_code_cell(f"{CHECKED_OUTPUT_MARK}\nprint(42)", outputs=[out], execution_count=2)]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    assert strip(path) is True
    plain, checked = nbformat.read(str(path), as_version=4).cells
    assert plain.outputs == [] and plain.execution_count is None
    assert checked.outputs[0]["text"] == "42\n" and checked.execution_count == 2
    assert "keep_output" not in checked.metadata                          # the switch is not left behind
    assert strip(path) is False                                           # idempotent
    for nb_path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        copy = tmp_path / nb_path.name
        shutil.copy(nb_path, copy)
        assert strip(copy) is False, f"{nb_path.name} has outputs outside the nbval-checked cells"


def test_a_text_retires_at_the_first_check_that_reaches_the_target(tiny):
    """The retire rule (best accuracy >= target_accuracy, read at every check): a text that fits stops at the
    first check whose accuracy is 1.0, labelled converged, long before its step budget (known: the tiny model
    is steered to one token repeated 6 times within a few dozen steps at lr 0.5)."""
    ids = [random.Random(2).randrange(1000)] * 6
    r = cram(tiny, [ids], max_steps=300, lr=0.5, check_every=1, patience=None, progress=False, decode=False)[0]
    accuracy = [h[2] for h in r.history]
    assert r.converged and r.stop_reason == "converged" and r.steps < 300, (r.stop_reason, r.steps)
    assert accuracy[-1] == 1.0 and all(a < 1.0 for a in accuracy[:-1]), accuracy[-5:]

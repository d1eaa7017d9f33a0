# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       layouts:
#       - sink-first
#       lengths:
#       - 4
#       - 6
#       max_steps: 3
#       models:
#       - tiny-llama
#       n_texts: 2
#       out: ''
#       progressive_max_steps: 3
#       progressive_max_tokens: 6
#       progressive_step_tokens: 2
#       protocols:
#       - pc
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 07 · At scale: the paper's protocol on a GPU
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 3 of 3 | full: not for a CPU / fast: 1 min 26 s (86 s, embedded model, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: about 13 min over two runs, 2026-11-28, when section 5 still ran the kit's own progressive settings (500 steps per length, constant lr, no carry-over; it took 175 s). The first run stopped at its 540 s limit with 736 of the 768 sweep jobs written; the rerun resumed the sweep (the last 32 jobs, 57 s). Section 5 now runs the `progressive-2026` preset: not yet timed on a GPU | 04 |
#
# **After this notebook you will be able to:**
# - run the paper's length grid over many texts, both layouts and both protocols, as a resumable sweep
# - read our Table 1 beside the paper's (Max, gain, information gain, capacity utilisation)
# - measure how far progressive cramming goes, mean +- std over texts, beside the follow-up paper
# - split a sweep over several GPUs with torchrun

# %%
import tempfile
from pathlib import Path

import torch

from cramlab import CramSettings, get_texts, load_model, progressive
from cramlab.lab import exercises, plots, widgets
from cramlab.lab.notebook_runner import Recorder
from cramlab.models.load import hub_reachable
from cramlab.science.paper import PROGRESSIVE_TOKENS, published
from cramlab.science.report import format_report, length_records, report, write_csv
from cramlab.science.sweep import (
    n_jobs,
    plan,
    run_sweep,
    validate_config,
)

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
models = ["smollm2-135m"]                 # the first one is the widget's default; more run one after another
source = "unseen"                         # "unseen" (bundled passages) or "random"
lengths = [16, 32, 48, 64, 96, 128]       # the grid (the paper: 8, 16, 32, 64, 96, 128, ...)
n_texts = 32                              # texts per length (the paper used 50)
layouts = ["sink-first", "mem-first"]     # mem-first is the paper's layout
protocols = ["pc", "hc"]                  # pc scores all N tokens, hc (the authors' code) N-1
n_mem = 1
max_steps = 2000                          # per text and length (the paper: up to 5000)
lr = 1e-2                                 # the paper's AdamW learning rate
batch_size = 64                           # texts crammed together (same length and layout)
dtype = None                              # None: bfloat16 on a GPU, float32 on a CPU
progressive_max_tokens = 128              # progressive cramming: the cap
progressive_step_tokens = None            # None: the progressive-2026 preset's (+1 token); else an override
progressive_max_steps = None              # None: the preset's 1000 steps per length; else an override
out = "../runs/07_gpu_scale/results.jsonl"  # resumable (run again after a stop); empty: a temp file
seed = 0
fast = False                              # True: the minutes-long CPU budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    layouts, protocols, lengths, n_texts, max_steps, lr, out = ["sink-first"], ["pc"], [6], 2, 100, 0.1, ""
    progressive_max_tokens, progressive_step_tokens, progressive_max_steps = 12, 2, 80

# %% [markdown]
# ## 1. The machine

# %%
record = Recorder(record_path)
device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cuda":
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} device(s)")
else:
    print(f"no GPU: running on the CPU with {torch.get_num_threads()} threads (use fast mode here)")
hub = hub_reachable()
print(f"Hugging Face hub reachable: {hub}")
record("device", device)

# %% [markdown]
# ## 2. Choose the model
#
# With the hub reachable, any registry model can be picked (Pythia-160M ... Llama-3.1-8B; they download on
# first use). The Llama models are gated: accept Meta's licence on the model's hub page and log in first
# (notebook 00, section 3). Offline, the picker offers the embedded SmolLM2-135M and the tiny random test
# models (they check the mechanics; they cannot learn a text).

# %%
choices = widgets.CRAM_MODEL_CHOICES if hub else ("smollm2-135m",) + widgets.TINY
picker = widgets.Controls(lambda model: widgets.describe_cram_choice(model, max(lengths), n_mem, source),
                          [widgets.Field("model", models[0], "model", options=choices)],
                          title="Model (change, then run the next cell)")
picker.show();

# %%
chosen = picker.values()["model"]
models = [chosen] + [m for m in models[1:] if m != chosen]
if not hub:
    offline = [m for m in models if m not in choices]
    models = [m for m in models if m in choices]
    if offline:
        print(f"hub unreachable: skipping {offline}")
print("models:", models)

# %% [markdown]
# ## 3. The paper's protocol, as a resumable sweep
#
# Every text is cut to every length of the grid and crammed **from scratch**; texts of one length are
# crammed together in batches. `run_sweep` appends one JSON line per finished (model, source, layout,
# protocol, n_mem, length, text) and skips what the file already holds: if the kernel dies or you stop
# it, run the cell again and it goes on where it stopped.

# %%
out = out or str(Path(tempfile.mkdtemp(prefix="cramlab07-")) / "results.jsonl")
config = validate_config(dict(models=models, sources=[source], lengths=lengths, n_mem=[n_mem],
                              layouts=layouts, protocols=protocols, n_texts=n_texts, batch_size=batch_size,
                              max_steps=max_steps, lr=lr, dtype=dtype, seed=seed, device=device))
print(f"{n_jobs(config)} jobs in {len(plan(config))} batches of up to {batch_size} texts -> {out}")

# %%
summary = run_sweep(config, out)
record("sweep_seconds", summary.seconds)
record("n_jobs", summary.n_jobs)

# %% [markdown]
# ## 4. Our Table 1 beside the paper's
#
# Max = the largest length whose mean best accuracy is >= 0.99. Gain (tokens decoded beyond what the model
# guesses alone), information gain and capacity utilisation (gain / L_max) are averaged, as in the paper,
# over the texts that did **not** fit, pooled over lengths. The paper's figure is in brackets where the
# model is in its Table 1 (measured on PG-19 books; ours on unseen passages). Beside the paper's numbers the
# report uses the paper's convention (gain and IG × N, IG from the minimum training loss; the table's header
# names the convention it used: a sweep file keeps no minimum loss, so IG comes from the returned vectors'
# loss there, `paper-code-final`). `report(out, variant="scored")` gives the kit's own convention (× the
# scored tokens). This sweep runs the kit's settings above (lr, steps, both layouts), not the 2025 preset:
# `cramlab reproduce --paper 2025` runs that one.

# %%
rows = report(out)
print(format_report(rows))
csv_path = str(Path(out).with_suffix(".csv"))
write_csv(rows, csv_path)
print(f"CSV: {csv_path}")
record("max_tokens", {f"{r.model}/{r.layout}/{r.protocol}": r.max_tokens for r in rows})
record("capacity_utilisation", {f"{r.model}/{r.layout}/{r.protocol}": r.capacity_utilisation for r in rows})

# %%
curves = length_records(out)
for (model_name, src, layout, protocol, k), recs in curves.items():
    paper_max = published(model_name, source=src, n_mem=k).get("max_tokens")
    plots.accuracy_vs_length_chart(recs, title=f"{model_name}, {layout}, {protocol}: accuracy vs length",
                                   paper_max_tokens=paper_max).show()

# %% [markdown]
# ## 5. Progressive cramming (the follow-up)
#
# Tarasov et al. (ICML 2026) grow the target one token at a time and warm-start each length from the
# previous vector; a text stops at the first length that does not reach 100 %. The longest length reached,
# mean +- std over texts, is their measure (SmolLM2-135M base model: 38.5 +- 14.1 tokens). All texts still growing are
# crammed in one batch. The cell below runs their protocol as one object, `CramSettings.from_preset("progressive-2026")`
# (lr 0.1 with warm-up and cosine, moments carried over lengths, 1000 steps per length, no patience, init
# uniform[0, 0.02)); only the layout, the protocol (`hc` starts at 2 tokens: it never scores t_1) and the
# seed change, and the fast mode's smaller budgets show up as overrides in the printed settings.
#
# What the same preset gave on the embedded Instruct model at full scale, recorded by `cramlab reproduce
# --paper 2026` (the cell prints the card, date, texts and seeds from the recorded files): compare the vector
# at position 0 (mem-first) with the vector behind the sink token (sink-first), with t_1 given (`hc`) and
# with every token scored (`pc`).

# %%
from cramlab.lab.recorded import print_layout_comparison

print_layout_comparison();

# %% [markdown]
# The gap is far wider under `pc` than under `hc`: the handicap of position 0 is mostly predicting t_1 and
# the first tokens from that position, much less steering the rest of the text. Now this run:

# %%
lm = load_model(models[0], device=device, dtype=dtype)
texts = get_texts(lm.tokenizer, source, progressive_max_tokens, n_texts=n_texts, seed=seed)
budget = {k: v for k, v in (("max_steps", progressive_max_steps), ("step_tokens", progressive_step_tokens))
          if v is not None}
prog_rows = []
for layout in layouts:
    for protocol in protocols:
        settings = CramSettings.from_preset("progressive-2026", layout=layout, protocol=protocol, seed=seed,
                                            start_tokens=2 if protocol == "hc" else 1, **budget)
        s = progressive(lm, texts, settings, max_tokens=progressive_max_tokens)
        prog_rows.append(dict(layout=layout, protocol=protocol, texts=len(s.texts), mean_tokens=s.mean_tokens,
                              std_tokens=s.std_tokens, longest=max(s.longest_tokens),
                              greedy_exact=s.to_dict()["greedy_exact_fraction"],
                              steps=s.to_dict()["total_steps"], preset=settings.preset,
                              overrides=", ".join(settings.overrides)))
        last = s
print(plots.text_table(prog_rows, ["layout", "protocol", "texts", "mean_tokens", "std_tokens", "longest",
                                   "greedy_exact", "steps", "preset", "overrides"],
                       formats={"mean_tokens": ".1f", "std_tokens": ".1f", "greedy_exact": ".2f"},
                       headers={"mean_tokens": "mean tokens", "std_tokens": "std",
                                "greedy_exact": "greedy exact"}))
theirs = PROGRESSIVE_TOKENS.get(lm.spec.name)
if theirs and theirs.get("mean") is not None:
    print(f"\nfollow-up paper, {lm.spec.name}: {theirs['mean']} +- {theirs['std']} tokens")
record("progressive", prog_rows)

# %% [markdown]
# How this run differs from the follow-up's (printed from the settings the last run used):

# %%
used = last.settings
ours = dict(texts=f"{len(texts)} {source} texts", step=f"+{used['step_tokens']} token(s)",
            lr=f"{used['lr']} ({used['lr_schedule']}, warm-up {used['warmup_steps']})", batch=f"{len(texts)} texts",
            layout=", ".join(layouts), protocol=", ".join(protocols),
            budget=f"{used['max_steps']} steps per length, cap {progressive_max_tokens} tokens",
            preset=f"{used['preset']} {list(used['overrides']) or ''}")
theirs = dict(texts="50 PG-19 samples", step="+1 token", lr="0.1 (cosine, warm-up 100)", batch="10-25 texts",
              layout="mem-first (no sink token)", protocol="pc (all N tokens scored)",
              budget="1000 steps per length, 10,000 per text", preset="progressive-2026 (their code)")
print(plots.text_table([dict(setting=k, ours=str(ours[k]), follow_up=str(theirs[k])) for k in ours],
                       ["setting", "ours", "follow_up"]))

# %% [markdown]
# ## 6. Several GPUs
#
# The same sweep splits over the GPUs of one machine: every process loads the model once, takes every
# G-th text of each batch, writes its own part file, and process 0 merges them (after a barrier):
#
# ```
# torchrun --nproc-per-node=4 -m cramlab sweep sweep.yaml --out runs/results.jsonl
# cramlab report runs/results.jsonl --csv runs/table1.csv
# ```
#
# `sweep.yaml` holds the keys of `SweepConfig` (models, sources, lengths, n_mem, layouts, protocols, n_texts,
# batch_size, max_steps, lr, ...). Killing it, even with `kill -9`, loses nothing: run it again.
#
# ## Recap
# - The paper's Max comes from cramming every text at every length from scratch; a sweep does it in
#   batches and writes each result as soon as it exists.
# - Our Table 1 puts Max, gain, information gain and utilisation beside the paper's, with the caveat of
#   different texts (unseen passages, not PG-19) and, for SmolLM2, a model outside the paper.
# - Progressive cramming measures something else (how far a vector can be grown), reported as mean +- std.
#
# ## Exercises
#
# ### Exercise 1 · ★☆☆ · ~3 min
# How many lines does the finished results file hold? Compute it from the configuration.

# %%
answer_1 = ...
exercises.check_n_jobs(answer_1, config);

# %% [markdown]
# ### Exercise 2 · ★★☆ · ~4 min
# Compute the capacity utilisation of the first row of our table from its other columns.

# %%
row = rows[0]
answer_2 = ...
exercises.check_utilisation_of_row(answer_2, row);

# %% [markdown]
# ### Exercise 3 · ★☆☆ · ~3 min
# What is the mean longest length the last progressive run reached (`last`, a ProgressiveSummary)?

# %%
answer_3 = ...
exercises.check_progressive_mean(answer_3, last);

# %% [markdown]
# ## Solutions
#
# Try the exercises first. Each block below opens on a click and holds a reference answer that runs through
# the same check: copy it into a cell to run it. Run All never runs them, so your own answers stay; the
# kit's tests run every one of them after the notebook and check that it passes.

# %% [markdown]
# <details><summary>Solution to exercise 1</summary>
#
# ```python
# # Exercise 1: one line per model x source x layout x protocol x n_mem x length x text
# # (or count them: len(open(out).readlines()) once the sweep is done)
# answer_1 = len(models) * 1 * len(layouts) * len(protocols) * 1 * len(lengths) * n_texts
# exercises.check_n_jobs(answer_1, config);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2: gain tokens / L_max, on a row where some text did not fit (else there is no gain to average)
# import math
#
# row = next((r for r in rows if r.gain_tokens is not None and math.isfinite(r.gain_tokens)), None)
# if row is None:
#     print("every text fit in every row of this run: no gain, no utilisation (use longer lengths)")
# else:
#     answer_2 = row.gain_tokens / row.capacity_tokens
#     exercises.check_utilisation_of_row(answer_2, row);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 3</summary>
#
# ```python
# # Exercise 3
# answer_3 = sum(t.longest_tokens for t in last.texts) / len(last.texts)
# exercises.check_progressive_mean(answer_3, last);
# ```
#
# </details>

# %% [markdown]
# ## What you should have seen
#
# Your figures from this run beside their range over the kit's recorded runs of this notebook in the same
# mode (fast or full), read from the files under docs/data that name their command, machine and date.

# %%
from cramlab.lab.recorded import what_you_should_have_seen

what_you_should_have_seen("07_gpu_scale", record.figures,
                          ["device", "n_jobs", "max_tokens.smollm2-135m/sink-first/pc", "progressive.0.mean_tokens",
                           "progressive.0.greedy_exact"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [08 · Beyond the paper](08_beyond.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [06 · More vectors](06_more_vectors.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap) · [08 · Beyond the paper](08_beyond.ipynb) →

# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       lengths:
#       - 4
#       - 6
#       max_steps: 3
#       model: tiny-llama
#       n_texts: 2
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 04 · How many tokens fit?
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 2 of 3 | full: 16 min 41 s (1001 s Run All, alone, 2026-12-06, `docs/data/notebook_04_full_cpu_run_all_2026-12-06.json`; exercise 3's solution re-crams the whole grid, about as long again) / fast: 2 min 7 s (127 s, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: 46 s, 2026-11-28 | 03 |
#
# **After this notebook you will be able to:**
# - run the paper's length sweep: every text at every length, crammed from scratch
# - read an accuracy-vs-length curve and find Max, the longest length that fits
# - put your result beside the paper's Table 1

# %%
from cramlab import get_texts, grid_search, load_model
from cramlab.lab import exercises, plots
from cramlab.lab.notebook_runner import Recorder
from cramlab.science.paper import TABLE1, published
from cramlab.science.report import table1_row_from_grid

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
model = "smollm2-135m"
lengths = [8, 16, 32, 64]       # the paper: 8, 16, 32, 64, 96, 128, ...
n_texts = 2                     # texts per length (the paper: 50)
source = "unseen"
max_steps = 600                 # per length (the paper: up to 5000)
lr = 2e-2
threshold = 0.99                # a length fits when its mean accuracy reaches this
seed = 0
fast = False             # True: the seconds-to-minutes budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    lengths, n_texts, max_steps, lr = [8, 16], 2, 120, 0.1

# %%
record = Recorder(record_path)
lm = load_model(model)
texts = get_texts(lm.tokenizer, source, max(lengths), n_texts=n_texts, seed=seed)
for t in texts:
    print(f"{t.text_id}: {t.text[:80]!r}...")


# %% [markdown]
# ## 1. The sweep
#
# For each length N, every text is cut to its first N tokens and crammed **from scratch**; Max is the
# largest N whose mean best accuracy reaches the threshold. (`cramlab.science.search.grid_search` runs it; each
# finished length prints one line.)

# %%
def show(rec):
    print(f"N={rec.n_tokens:>4}: mean accuracy {rec.mean_accuracy:.3f}, {rec.n_converged}/{rec.n_texts} "
          f"converged, {rec.mean_steps:.0f} steps")

grid = grid_search(lm, texts, lengths, threshold=threshold, max_steps=max_steps, lr=lr, seed=seed,
                   callback=show, progress=True)        # a bar per length, a line after each

# %%
print(plots.text_table(grid.records, ["n_tokens", "mean_accuracy", "std_accuracy", "n_converged",
                                      "greedy_exact_fraction", "mean_steps", "mean_info_gain_bits", "fits"],
                       formats={"mean_accuracy": ".3f", "std_accuracy": ".3f", "greedy_exact_fraction": ".2f",
                                "mean_steps": ".0f", "mean_info_gain_bits": ".1f"},
                       headers={"greedy_exact_fraction": "greedy exact", "mean_info_gain_bits": "IG bits"}))
print(f"\nMax = {grid.max_tokens} tokens (largest length with mean accuracy >= {threshold})")
record("max_tokens", grid.max_tokens)
record("accuracy_by_length", {r.n_tokens: r.mean_accuracy for r in grid.records})

# %%
plots.accuracy_vs_length_chart(grid.records, threshold,
                               title=f"{lm.spec.name}: accuracy vs length ({n_texts} {source} texts)")

# %% [markdown]
# ## 2. Beside the paper's Table 1
#
# The paper ran 50 PG-19 texts per length for up to 5000 steps on bigger models;
# [gain](00_welcome.ipynb#gain-tokens) (tokens decoded
# beyond what the model guesses
# alone) and [information gain](00_welcome.ipynb#ig) are averaged over the texts that did **not**
# fit. Our row comes from the sweep above, with a far smaller budget.

# %%
ours = table1_row_from_grid(grid, lm.spec.name, lm.spec.d, lm.spec.vocab_size, threshold)
table = [dict(model=name, **row) for name, row in TABLE1.items()] + [ours]
print(plots.text_table(table, ["model", "d", "vocab_size", "capacity_tokens", "max_tokens", "gain_tokens",
                               "info_gain_nats", "capacity_utilisation"],
                       formats={"gain_tokens": ".1f", "info_gain_nats": ".0f", "capacity_utilisation": ".3f"},
                       headers={"vocab_size": "|V|", "capacity_tokens": "L_max", "max_tokens": "Max",
                                "gain_tokens": "gain", "info_gain_nats": "IG nats",
                                "capacity_utilisation": "util"}))
note = published(lm.spec.name).get("note")
if note:
    print(f"\nfor {lm.spec.name}, {note}")
for key in ("gain_tokens", "info_gain_nats", "capacity_utilisation"):
    record(f"ours_{key}", ours[key])

# %% [markdown]
# ## Recap
# - Max is a property of a model, a text source and a budget: the largest length whose texts fit on average.
# - Accuracy falls off gradually with length; texts of the same length differ a lot.
# - Bigger models fit far more (Table 1), but use only 7.5-28.3 % of their theoretical capacity.
#
# ## Exercises
#
# ### Exercise 1 · ★☆☆ · ~3 min
# From `grid.records`, what is Max at threshold `threshold`? (`None` if no length fits)

# %%
answer_1 = ...
exercises.check_max_tokens(answer_1, grid.records, threshold);

# %% [markdown]
# ### Exercise 2 · ★★☆ · ~4 min
# What is the capacity utilisation of Pythia-160M? (`TABLE1["pythia-160m"]` has its gain tokens;
# L_max = 768 * 16 / log2 50304)

# %%
answer_2 = ...
exercises.check_utilisation("pythia-160m", answer_2);

# %% [markdown]
# ### Exercise 3 · ★★★ · ~15 min (and as long as the sweep above to run)
# Write the grid loop yourself: for every N in `lengths`, cram every text's first N tokens from scratch
# in one batch (`cram(lm, [...], max_steps=max_steps, lr=lr, seed=seed, progress=False)`) and keep
# `{"n_tokens": N, "mean_accuracy": ...}`, the mean of the results' `teacher_forced_accuracy`. The check
# compares your rows with `grid_search`'s on the same texts and derives Max from them by the paper's rule.

# %%
from cramlab.engine.plain import cram  # noqa: F401 - for your loop


def my_grid(texts, lengths):
    """One {"n_tokens": N, "mean_accuracy": ...} per length."""
    rows = []
    ...   # your loop here
    return rows or ...


answer_3 = my_grid(texts, lengths)
exercises.check_own_grid(answer_3, grid);

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
# # Exercise 1: the largest length whose mean accuracy reaches the threshold
# answer_1 = max([r.n_tokens for r in grid.records if r.mean_accuracy >= threshold], default=None)
# exercises.check_max_tokens(answer_1, grid.records, threshold);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2: mean gain tokens / L_max (about 0.090)
# import math
#
# answer_2 = TABLE1["pythia-160m"]["gain_tokens"] / (768 * 16 / math.log2(50304))
# exercises.check_utilisation("pythia-160m", answer_2);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 3</summary>
#
# ```python
# # Exercise 3: the grid loop, every length from scratch
# from cramlab.engine.plain import cram
#
#
# def my_grid(texts, lengths):
#     """One {"n_tokens": N, "mean_accuracy": ...} per length."""
#     rows = []
#     for n in lengths:
#         results = cram(lm, [t.token_ids[:n] for t in texts], max_steps=max_steps, lr=lr, seed=seed,
#                        progress=False)
#         rows.append({"n_tokens": n, "mean_accuracy": sum(r.teacher_forced_accuracy for r in results) / len(results)})
#     return rows
#
#
# answer_3 = my_grid(texts, lengths)
# exercises.check_own_grid(answer_3, grid);
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

what_you_should_have_seen("04_how_many_tokens_fit", record.figures,
                          ["max_tokens", "accuracy_by_length.8", "accuracy_by_length.16", "ours_gain_tokens",
                           "ours_capacity_utilisation"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [05 · Capacity is entropy, not length](05_capacity_is_entropy.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [03 · First cram](03_first_cram.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap) · [05 · Capacity is entropy, not length](05_capacity_is_entropy.ipynb) →

# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       max_steps: 3
#       max_tokens: 6
#       model: tiny-llama
#       n_texts: 1
#       step_tokens: 2
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 08 · Beyond the paper: growing a vector, attention sinks, the path it takes
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 3 of 3 | full: 3 min 23 s (4 texts grown to the CPU cap of 16 tokens; 203 s Run All; the solutions, which Run All never runs, 189 s more; alone, 2026-12-06, `docs/data/notebooks_full_cpu_08-09_2026-12-06.json`) / fast: 1 min 10 s (70 s, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: 45 s (4 texts, cap 96 tokens; they stopped at 36-49), 2026-11-28 | 03, 07 |
#
# **After this notebook you will be able to:**
# - grow a vector token by token (progressive cramming) and see where it stops
# - measure how much attention the text pays to the trained vector, layer by layer
# - find how many directions the vector's path really uses (PCA)

# %%
import torch

from cramlab import get_texts, load_model, progressive
from cramlab.lab import exercises, plots
from cramlab.lab.notebook_runner import Recorder
from cramlab.science.attention import attention_shares
from cramlab.science.paper import PROGRESSIVE_TOKENS
from cramlab.science.trajectory import trajectory_pca

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
model = "smollm2-135m"
source = "unseen"
n_texts = 4              # texts grown together (one batch)
start = 2                # first length, in tokens
step_tokens = 1          # grow by this many tokens (the follow-up: 1)
max_tokens = None        # stop here even if it still fits; None: 96 on a GPU, 16 on a CPU (section 1 says why)
max_steps = 300          # optimisation steps per length
lr = 0.1                 # the follow-up's lr for SmolLM2
layout = "sink-first"
seed = 0
fast = False             # True: the seconds-to-minutes budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    n_texts, max_tokens, step_tokens, max_steps = 1, 12, 2, 80

# %% [markdown]
# ## 1. Progressive cramming
#
# Tarasov et al. (ICML 2026) do not cram each length from scratch. They grow the target: fit the first
# token, then the first two starting from that vector, and so on; a text stops at the first length whose
# accuracy does not reach 100 %. Each length starts where the last one ended, so most lengths take a few
# steps. (Vectors that fit N tokens fit every shorter prefix too: the model is causal.)

# %%
record = Recorder(record_path)
lm = load_model(model)
if max_tokens is None:      # on 2 CPU cores 96 tokens ran this cell over 19 min and 32 over 30 min (then stopped)
    max_tokens = 96 if lm.spec.device.startswith("cuda") else 16
texts = get_texts(lm.tokenizer, source, max_tokens, n_texts=n_texts, seed=seed)

def show(n_tokens, results):      # one line per length: the cell is never silent for long
    print(f"N={n_tokens:>4}: {sum(r.teacher_forced_accuracy == 1.0 for r in results)}/{len(results)} "
          f"still fit, steps {[r.steps for r in results]}")

grown = progressive(lm, texts, start=start, step_tokens=step_tokens, max_tokens=max_tokens,
                    max_steps=max_steps, lr=lr, layout=layout, seed=seed, keep_trajectory=True, callback=show,
                    progress=True)   # a bar for each length: the last ones can take minutes on a CPU

# %%
print(plots.text_table([dict(text=t.text_id, longest=t.longest_tokens, stopped_at=t.failed_tokens,
                             steps=t.total_steps, greedy_exact=t.greedy_exact) for t in grown.texts],
                       ["text", "longest", "stopped_at", "steps", "greedy_exact"]))
print(f"\nmax tokens: {grown.mean_tokens:.1f} +- {grown.std_tokens:.1f} over {len(grown.texts)} text(s)")
theirs = PROGRESSIVE_TOKENS.get(lm.spec.name)
if theirs and theirs.get("mean") is not None:
    print(f"follow-up paper, {lm.spec.name}: {theirs['mean']} +- {theirs['std']} tokens")
record("mean_tokens", grown.mean_tokens)
record("longest_tokens", grown.longest_tokens)

# %% [markdown]
# Steps spent at each length: most lengths are cheap; the last ones before a stop are not.

# %%
plots.progressive_steps_chart(grown.texts)

# %% [markdown]
# ## 2. The vector as an attention sink
#
# The follow-up found that the [mem] position draws 20-60 % of the attention in some layers. Here: for
# each layer, the share of attention the text positions give to the sink token, to the trained vector and
# to the text itself (averaged over heads and positions). For comparison, a random vector of the same
# norm as the trained one: what draws the attention is the trained direction, not the size.

# %%
best = max(grown.texts, key=lambda t: t.longest_tokens)
ids = next(x for x in texts if x.text_id == best.text_id).token_ids[:max(best.longest_tokens, 2)]
vector = best.vectors if best.vectors is not None else torch.zeros(1, lm.spec.d)
random_vector = torch.randn(vector.shape, generator=torch.Generator().manual_seed(seed))
random_vector = random_vector * (vector.float().norm() / random_vector.norm())     # the same norm
crammed = attention_shares(lm, vector, ids, layout=layout)
baseline = attention_shares(lm, random_vector, ids, layout=layout)
rows = [dict(layer=i, sink=crammed.sink_share[i], vector=crammed.mem_share[i], text=crammed.text_share[i],
             random_vector=baseline.mem_share[i]) for i in range(crammed.n_layers)]
print(plots.text_table(rows, ["layer", "sink", "vector", "text", "random_vector"],
                       formats={k: ".3f" for k in ("sink", "vector", "text", "random_vector")},
                       headers={"vector": "trained vector", "random_vector": "random vector"}))
peak = crammed.peak_mem_layer()
print(f"\npeak: layer {peak}, {crammed.mem_share[peak]:.1%} of the attention on the trained vector "
      f"(a random vector: {baseline.mem_share[peak]:.1%})")
record("peak_mem_layer", peak)
record("peak_mem_share", crammed.mem_share[peak])
record("peak_random_share", baseline.mem_share[peak])

# %%
plots.attention_share_chart(crammed, baseline)

# %% [markdown]
# Two different things are called "sink" in this kit. Notebook 03's sink is a *position*: position 0 of
# SmolLM2, which many heads attend to; a vector placed there holds fewer tokens, mostly because it must
# predict t_1 and the first tokens from there (03's recorded runs; the kit puts a fixed token there). The
# follow-up's "attention sink" measured here is *where attention goes*: the share of attention that the text
# positions pay to the trained vector. A vector can draw much attention and still be the thing the text
# reads from.
#
# In the `sink-first` layout the fixed token at position 0 already plays the sink; compare with
# `layout = "mem-first"` (the paper's layout) in the parameters cell, where the vector itself sits at
# position 0.
#
# ## 3. The path of the vector
#
# `keep_trajectory=True` kept the vector after every length. Stacked, they are a path in a space of
# d dimensions; a PCA says how many directions it really uses. (T points span at most T-1 directions:
# a short run cannot show the follow-up's 30-100 components for 99 %.)

# %%
if len(best.trajectory) >= 2:
    pca = trajectory_pca(best.trajectory)
    k99 = pca.n_components(0.99)
    print(f"{pca.n_points} vectors of {pca.dim} numbers; {k99} component(s) hold 99 % of the variance, "
          f"the first holds {pca.explained_variance_ratio[0]:.1%}")
    print(f"{k99} of at most {pca.n_points - 1} directions that {pca.n_points} points can span: "
          + ("most of them, so this path does not show a low-dimensional motion" if k99 > (pca.n_points - 1) / 2
             else "a small share of them"))
    record("n_components_99", k99)
    record("n_components_possible", pca.n_points - 1)
else:
    pca = None
    print("the text did not grow past its first length: no path to analyse (try more steps or a higher lr)")

# %%
if pca is not None:
    plots.explained_variance_chart(pca, 0.99).show()

# %% [markdown]
# ## Recap
# - Growing a vector token by token, each length warm-started from the last, is cheap per length and
#   stops at the first length it cannot fit: a per-text measure, reported as mean +- std.
# - The trained vector is not read like a token: some layers pay it a large share of their attention.
# - How many directions the growing vector's path uses is printed in section 3 beside the most its points
#   can span (T points: at most T-1), and the recorded runs' `n_components_99` at the end of the notebook. On
#   a CPU-sized path (a few lengths) that count is bounded by the few points, so such a run cannot show
#   whether the vector moves in few directions; the follow-up's 30-100 components come from far longer paths.
#
# ## Exercises
#
# ### Exercise 1 · ★★☆ · ~3 min
# The vector of section 2 (`vector`) fits the first `best.longest_tokens` tokens of its text (`ids`). Does it
# also give back the first half of them, without any more training? (`"yes"` or `"no"`; the check decodes it)

# %%
answer_1 = ...
exercises.check_prefix_fits(answer_1, lm, vector, ids, best.longest_tokens, layout=layout);

# %% [markdown]
# ### Exercise 2 · ★☆☆ · ~2 min
# The mean longest length reached over the texts of `grown`?

# %%
answer_2 = ...
exercises.check_progressive_mean(answer_2, grown);

# %% [markdown]
# ### Exercise 3 · ★★☆ · ~4 min
# How many components hold 99 % of the variance of the path (`pca`)?

# %%
answer_3 = ...
if pca is not None:
    exercises.check_components(answer_3, pca);

# %% [markdown]
# ### Exercise 4 · ★★★ · ~20 min (and about one text's share of section 1 to run)
# Write progressive cramming yourself, for the first text, **carrying the optimiser state**: start at
# `start` tokens; at each length call `cram(lm, [text_0[:n]], max_steps=max_steps, lr=lr, layout=layout,
# seed=seed, progress=False, decode=False, init_vectors=..., init_optimizer=...)` with the previous length's
# `.vectors` and `.optimizer` (AdamW's moments and step count: what Tarasov et al.'s code carries); stop at
# the first length that does not converge or at `max_tokens`, growing by `step_tokens`. Return
# `(longest length that fit, total steps)`. The check runs the kit's `progressive(..., carry_optimizer=True)`
# on the same text.

# %%
from cramlab.engine.plain import cram  # noqa: F401 - for your loop

text_0 = texts[0].token_ids


def my_progressive(token_ids):
    """(longest length that fit, total steps over all lengths)."""
    ...   # your loop here
    return ...


answer_4 = my_progressive(text_0)
exercises.check_own_progressive(answer_4, lambda: progressive(      # the kit's loop, run once you answer
    lm, [text_0], start=start, step_tokens=step_tokens, max_tokens=max_tokens, max_steps=max_steps, lr=lr,
    layout=layout, seed=seed, carry_optimizer=True).texts[0]);

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
# # Exercise 1: "yes" - the model is causal: the greedy steps for the first M tokens never see the later ones
# answer_1 = "yes"
# exercises.check_prefix_fits(answer_1, lm, vector, ids, best.longest_tokens, layout=layout);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2
# answer_2 = sum(t.longest_tokens for t in grown.texts) / len(grown.texts)
# exercises.check_progressive_mean(answer_2, grown);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 3</summary>
#
# ```python
# # Exercise 3: the first index where the cumulative share reaches 0.99, plus one
# if pca is None:
#     print("no path in this run (the text did not grow): nothing to count")
# else:
#     answer_3 = next(i + 1 for i, c in enumerate(pca.cumulative) if c >= 0.99)
#     exercises.check_components(answer_3, pca);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 4</summary>
#
# ```python
# # Exercise 4: warm-started lengths, the optimiser state carried from one length to the next
# from cramlab.engine.plain import cram
#
# text_0 = texts[0].token_ids
#
#
# def my_progressive(token_ids):
#     """(longest length that fit, total steps over all lengths)."""
#     longest, total, last, n = 0, 0, None, start
#     while True:
#         r = cram(lm, [token_ids[:n]], max_steps=max_steps, lr=lr, layout=layout, seed=seed, progress=False,
#                  decode=False, init_vectors=None if last is None else last.vectors,
#                  init_optimizer=None if last is None else last.optimizer)[0]
#         total += r.steps
#         if not r.converged:
#             return longest, total
#         longest, last = n, r
#         if n >= max_tokens:
#             return longest, total
#         n = min(n + step_tokens, max_tokens)
#
#
# answer_4 = my_progressive(text_0)
# exercises.check_own_progressive(answer_4, lambda: progressive(      # the kit's loop, run once you answer
#     lm, [text_0], start=start, step_tokens=step_tokens, max_tokens=max_tokens, max_steps=max_steps, lr=lr,
#     layout=layout, seed=seed, carry_optimizer=True).texts[0]);
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

what_you_should_have_seen("08_beyond", record.figures,
                          ["mean_tokens", "peak_mem_layer", "peak_mem_share", "peak_random_share",
                           "n_components_99"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [09 · In practice](09_in_practice.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [07 · At scale](07_gpu_scale.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap) · [09 · In practice](09_in_practice.ipynb) →

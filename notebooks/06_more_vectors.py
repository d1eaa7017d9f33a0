# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       max_steps: 3
#       model: tiny-llama
#       n_mems:
#       - 1
#       - 2
#       n_tokens: 6
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 06 · More vectors
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 3 of 3 | full: 11 min 29 s (689 s, alone, 2026-12-06, `docs/data/notebooks_full_cpu_05-06_2026-12-06.json`) / fast: 2 min 7 s (127 s, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: 41 s, 2026-11-28 | 03, 04 |
#
# **After this notebook you will be able to:**
# - cram the same text into 1, 2, 4 ... vectors and compare
# - compute the capacity of several vectors
# - read the paper's scaling: Max grows about linearly with the number of vectors

# %%
from cramlab import cram, get_texts, load_model
from cramlab.capacity import capacity
from cramlab.lab import exercises, plots, widgets
from cramlab.lab.notebook_runner import Recorder
from cramlab.science.paper import MULTI_VECTOR_MAX_TOKENS

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
model = "smollm2-135m"
n_mems = [1, 2, 4]      # numbers of vectors to try
n_tokens = 64           # one length, longer than one vector holds in the budget
n_texts = 1
source = "unseen"
max_steps = 600
lr = 2e-2
seed = 0
fast = False             # True: the seconds-to-minutes budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    n_tokens, n_mems, max_steps, lr = 24, [1, 2, 4], 80, 0.1

# %% [markdown]
# ## 1. Capacity of k vectors
#
# k vectors store k times the bits: L_max grows linearly. Try it with the number-of-vectors control:

# %%
record = Recorder(record_path)
explorer_model = model if model in widgets.MODEL_CHOICES else widgets.EMBEDDED   # the `model` parameter
if explorer_model != model:
    print(f"{model} is not in the capacity registry: the explorer starts at {explorer_model}")
explorer = widgets.capacity_controls(explorer_model, "bfloat16", max(n_mems))
explorer.show();

# %% [markdown]
# ## 2. The same text in 1, 2, 4 ... vectors

# %%
lm = load_model(model)
texts = get_texts(lm.tokenizer, source, n_tokens, n_texts=n_texts, seed=seed)
print(f"{len(texts)} {source} text(s) of {n_tokens} tokens: {texts[0].text[:80]!r}...")
results = {k: cram(lm, texts, n_mem=k, max_steps=max_steps, lr=lr, seed=seed) for k in n_mems}   # a bar for each k

# %%
rows = [dict(n_mem=k, capacity=capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens,
             accuracy=sum(r.teacher_forced_accuracy for r in rs) / len(rs),
             converged=sum(r.converged for r in rs), greedy_exact=sum(bool(r.greedy_exact) for r in rs),
             steps=sum(r.steps for r in rs) / len(rs),
             info_gain_bits=sum(r.info_gain_bits for r in rs) / len(rs),
             decoded_tokens=sum(r.teacher_forced_accuracy * r.n_tokens for r in rs) / len(rs))
        for k, rs in results.items()]
print(plots.text_table(rows, ["n_mem", "capacity", "accuracy", "converged", "greedy_exact", "steps",
                              "info_gain_bits", "decoded_tokens"],
                       formats={"accuracy": ".3f", "steps": ".0f", "info_gain_bits": ".1f",
                                "decoded_tokens": ".1f"},
                       headers={"capacity": "L_max", "info_gain_bits": "IG bits",
                                "decoded_tokens": "tokens right"}))
record("accuracy_by_n_mem", {r["n_mem"]: r["accuracy"] for r in rows})
record("steps_by_n_mem", {r["n_mem"]: r["steps"] for r in rows})
record("info_gain_bits_by_n_mem", {r["n_mem"]: r["info_gain_bits"] for r in rows})

# %% [markdown]
# More vectors give the optimiser more room: at a fixed budget the same text reaches a higher accuracy
# (or converges in fewer steps). The paper's scaling is measured as **Max** (the longest length whose texts
# fit, searched over a grid of lengths); our column "tokens right" is a different quantity: teacher-forced
# tokens right out of one fixed length (`n_tokens`), so it can never exceed that length. The two go on separate
# charts. The paper's Max beside the theoretical capacities:

# %%
capacities = {lm.spec.name: {k: capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens_exact
                             for k in (1, 2, 4, 8, 16)}}
plots.tokens_vs_n_mem_chart(paper=MULTI_VECTOR_MAX_TOKENS, capacity=capacities,
                            title="The paper's Max (PG-19) and capacities vs number of vectors")

# %% [markdown]
# This run: tokens right (teacher-forced) out of the fixed length, per number of vectors.

# %%
ours = {r["n_mem"]: r["decoded_tokens"] for r in rows}
fig = plots.tokens_vs_n_mem_chart(ours=ours, ours_label=f"this run: tokens right of {n_tokens}",
                                  title=f"This run: tokens right out of {n_tokens} (capped at {n_tokens})")
fig.add_hline(y=n_tokens, line_dash="dash", annotation_text=f"the text's length, {n_tokens}")
fig

# %%
for name, series in MULTI_VECTOR_MAX_TOKENS.items():
    print(f"{name:<13} " + "  ".join(f"k={k}: {v}" for k, v in series.items()))

# %% [markdown]
# ## Recap
# - k vectors have k times the capacity; in the paper Max grew about linearly too (Llama-3.2-1B: 512 tokens
#   with one vector, 7168 with sixteen; Pythia-160M: 80 with one, 1280 with sixteen).
# - With more vectors, the same text trains faster and further.
#
# ## Exercises
#
# ### Exercise 1 · ★☆☆ · ~1 min
# Llama-3.2-1B held 7168 tokens in 16 vectors. How many tokens per vector is that?

# %%
answer_1 = ...
exercises.check_compression_ratio(7168, 16, answer_1);

# %% [markdown]
# ### Exercise 2 · ★★☆ · ~4 min
# Look at the paper's figures printed above (`MULTI_VECTOR_MAX_TOKENS`). Does Max grow roughly linearly with
# the number of vectors (tokens per vector within a factor 2 of one vector's)? (`"yes"` or `"no"`) Does it
# double exactly at every step for both models?

# %%
answer_2 = ...
exercises.check_scaling(answer_2);

# %% [markdown]
# ### Exercise 3 · ★★★ · ~15 min
# Put several vectors side by side yourself. For every k in `results`, take the first text's trained vectors
# (`results[k][0].vectors`, k x d), feed the frozen model `[sink] [k vectors] [t_1 ... t_N]` as
# `inputs_embeds`, and compute the teacher-forced accuracy: the share of t_1 ... t_N that the positions just
# before them predict (the last vector's position predicts t_1). Store `{k: accuracy}`; the check compares
# with what `cram()` reported for the same vectors.

# %%
import torch  # noqa: F401 - for your code

my_accuracy = ...
exercises.check_own_accuracies(my_accuracy, results);

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
# # Exercise 1: tokens / vectors (448)
# answer_1 = 7168 / 16
# exercises.check_compression_ratio(7168, 16, answer_1);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2: tokens per vector for every k, relative to one vector's
# for name, series in MULTI_VECTOR_MAX_TOKENS.items():
#     per_vector = {k: v / k / series[1] for k, v in series.items()}
#     print(name, {k: round(x, 2) for k, x in per_vector.items()})
# answer_2 = "yes" if all(0.5 <= x <= 2 for s in MULTI_VECTOR_MAX_TOKENS.values()
#                         for x in (v / k / s[1] for k, v in s.items())) else "no"
# exercises.check_scaling(answer_2);
# # Exact doubling, step by step (read from the paper's figures, not typed here):
# for name, series in MULTI_VECTOR_MAX_TOKENS.items():
#     ks = sorted(series)
#     doubled = [f"{a}->{b}" for a, b in zip(ks, ks[1:]) if b == 2 * a and series[b] == 2 * series[a]]
#     print(f"{name}: Max doubles exactly at {', '.join(doubled) or 'no step'} of {len(ks) - 1} steps")
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 3</summary>
#
# ```python
# # Exercise 3: k vectors side by side after the sink; positions k .. k+N-1 predict t_1 .. t_N
# import torch
#
# embed = lm.model.get_input_embeddings()
# dev = lm.spec.device
# ids = torch.tensor([texts[0].token_ids], device=dev)
# my_accuracy = {}
# with torch.no_grad():
#     sink = embed(torch.tensor([[lm.spec.sink_token_id]], device=dev))
#     for k, rs in results.items():
#         mem = torch.as_tensor(rs[0].vectors, dtype=torch.float32).reshape(1, k, lm.spec.d).to(dev, sink.dtype)
#         logits = lm.model(inputs_embeds=torch.cat([sink, mem, embed(ids)], dim=1)).logits
#         predicted = logits[0, k:k + ids.shape[1]].argmax(-1)
#         my_accuracy[k] = (predicted == ids[0]).float().mean().item()
# exercises.check_own_accuracies(my_accuracy, results);
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

what_you_should_have_seen("06_more_vectors", record.figures,
                          ["accuracy_by_n_mem.1", "accuracy_by_n_mem.2", "accuracy_by_n_mem.4",
                           "info_gain_bits_by_n_mem.1", "info_gain_bits_by_n_mem.2"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [07 · At scale on a GPU](07_gpu_scale.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [05 · Capacity is entropy, not length](05_capacity_is_entropy.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap) · [07 · At scale](07_gpu_scale.ipynb) →

# ---
# jupyter:
#   cramlab:
#     smoke_parameters: {}
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 01 · Bits in a vector
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 1 of 3 | full: 3 s (alone, 2026-12-06, `docs/data/notebooks_full_cpu_00-02_2026-12-06.json`) / fast: 7 s (two notebooks at a time, one thread each, 2026-11-29); no model is loaded | no model: the same | 00 |
#
# **After this notebook you will be able to:**
# - count the bits a vector can store for each number format
# - compute the theoretical capacity of one vector in tokens, d * bits / log2 |V|
# - compare capacities across real models, with a chart and a widget
# - tell capacity from what the paper actually fitted

# %%
from cramlab import capacity as cap
from cramlab.lab import exercises, plots, widgets
from cramlab.lab.notebook_runner import Recorder
from cramlab.science.paper import TABLE1

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"   # any registered model (see the table below)
dtype = "bfloat16"       # the paper counts 16 bits per value
n_mem = 1                # number of vectors
fast = False             # (already seconds long: fast mode changes nothing here)
record_path = ""

# %% [markdown]
# ## 1. Bits per value
#
# A vector is `d` numbers. How much one number can store depends on its format:

# %%
# NBVAL_CHECK_OUTPUT
for name in ["float32", "bfloat16", "float16", "float8"]:
    print(f"{name:<9} {cap.bits_per_value(name):>3} bits per value")

# %% [markdown]
# The paper counts **16 bits per value** (a bfloat16 or float16 number) when it computes capacity. One vector
# of SmolLM2-135M therefore stores at most:

# %%
# NBVAL_CHECK_OUTPUT
shape = cap.get_shape("smollm2-135m")
print(f"d = {shape.d} values x 16 bits = {cap.capacity_bits(shape.d, 16):,} bits in one vector")

# %% [markdown]
# ## 2. Bits per token
#
# To name one token out of a vocabulary of |V| tokens with a code that knows nothing else (every token
# equally likely, a fixed-length code) takes log2 |V| bits:

# %%
# NBVAL_CHECK_OUTPUT
for name in ["smollm2-135m", "pythia-160m", "llama-3.2-1b"]:
    v = cap.get_shape(name).vocab_size
    print(f"{name:<13} |V| = {v:>6}  ->  log2 |V| = {cap.bits_per_token(v):.2f} bits per token")

# %% [markdown]
# That is the cost under a *uniform* code, not under the language model. Under the model a token costs its
# surprisal, -log2 p(token | the tokens before it): far less for a token the model expects, and **more** than
# log2 |V| for any single token it gives a probability below 1/|V|. Averaged over a text it can land on
# either side: notebook 02 prints each source's average beside log2 |V| from your own run.
# So "a token costs at most log2 |V| bits" holds only for the uniform code; [L_max](00_welcome.ipynb#l-max) below
# uses it as the
# yardstick of how many arbitrary token ids the raw bits could name.

# %% [markdown]
# ## 3. Capacity in tokens
#
# Divide the first by the second: $L_{max} = \dfrac{d \cdot b}{\log_2 |V|}$ tokens per vector
# (`b` = 16 bits). For every model in the registry:

# %%
# NBVAL_CHECK_OUTPUT
rows = cap.capacity_table(bits=16)
print(plots.text_table(rows, ["model", "family", "d", "vocab_size", "capacity_tokens"],
                       headers={"vocab_size": "|V|", "capacity_tokens": "L_max (tokens)"}))

# %%
record = Recorder(record_path)
record("n_models", len(rows))
plots.capacity_bar_chart(rows, highlight=model)

# %% [markdown]
# The model, format and number of vectors chosen in the parameters cell:

# %%
chosen = cap.capacity_of(model, bits=cap.bits_per_value(dtype), n_mem=n_mem)
print(f"{n_mem} vector(s) of {model} in {dtype}: {chosen.capacity_bits:,} bits = "
      f"{chosen.capacity_tokens:,} tokens")
record("capacity_tokens", chosen.capacity_tokens)
record("capacity_bits", chosen.capacity_bits)

# %% [markdown]
# ### Explore
# Pick a model, a format and a number of vectors: in JupyterLab the line and the chart below the controls
# follow them (the chosen model is outlined); without a front end, the current values are printed.

# %%
explorer = widgets.capacity_controls(model, dtype, n_mem, chart=True)
explorer.show();

# %% [markdown]
# ## 4. Capacity is not what fits
#
# The paper measured the longest text that one vector really reproduces (Max, on PG-19 books). It is far
# below the capacity: *[capacity utilisation](00_welcome.ipynb#utilisation)* = mean tokens gained / L_max, over the
# texts that did not fit
# (computed from the paper's Table 1 below).

# %%
# NBVAL_CHECK_OUTPUT
paper_rows = [dict(model=name, **row) for name, row in TABLE1.items()]
print(plots.text_table(paper_rows, ["model", "capacity_tokens", "max_tokens", "capacity_utilisation"],
                       formats={"capacity_utilisation": ".3f"},
                       headers={"capacity_tokens": "L_max", "max_tokens": "Max (paper)",
                                "capacity_utilisation": "utilisation"}))

# %%
utilisation = [row["capacity_utilisation"] for row in TABLE1.values()]
print(f"capacity utilisation in Table 1: {min(utilisation):.1%} to {max(utilisation):.1%}")
record("paper_utilisation_range", [min(utilisation), max(utilisation)])

# %% [markdown]
# Why so little? Not because text is predictable: predictable text is *cheap*, so more of it fits. The
# shortfall is that the trained vector carries only a small share of its raw bits. The paper's information
# gain ([IG](00_welcome.ipynb#ig): the [cross-entropy](00_welcome.ipynb#cross-entropy) the vector removes,
# averaged over texts that did not fit) against the bits
# of the vector:

# %%
ig_rows = [dict(model=name, ig_nats=row["info_gain_nats"], ig_bits=cap.nats_to_bits(row["info_gain_nats"]),
                vector_bits=cap.capacity_bits(row["d"], 16),
                share=cap.nats_to_bits(row["info_gain_nats"]) / cap.capacity_bits(row["d"], 16))
           for name, row in TABLE1.items()]
print(plots.text_table(ig_rows, ["model", "ig_nats", "ig_bits", "vector_bits", "share"],
                       formats={"ig_bits": ",.0f", "vector_bits": ",", "share": ".1%"},
                       headers={"ig_nats": "IG (nats)", "ig_bits": "IG (bits)", "vector_bits": "bits in vector",
                                "share": "used"}))
record("llama_8b_ig_bits", cap.nats_to_bits(TABLE1["llama-3.1-8b"]["info_gain_nats"]))

# %% [markdown]
# The paper's headline "x1568 compression" counts **positions**: 1568 token positions replaced by one input
# position. In bytes the vector is the bigger of the two:

# %%
best = max(TABLE1, key=lambda m: TABLE1[m]["max_tokens"])
ratio = cap.compression_ratio(TABLE1[best]["max_tokens"], 1)
print(f"largest: {best}, {ratio:.0f} tokens in one vector (the paper's x{ratio:.0f}, counted in positions)")
record("paper_best_ratio", ratio)


def vector_bytes(d, bits=16):
    return cap.capacity_bits(d, bits) / 8


best_row = TABLE1[best]
token_bits = cap.bits_per_token(best_row["vocab_size"])
text_bytes = best_row["max_tokens"] * token_bits / 8
ours = cap.get_shape("smollm2-135m")
print(f"one {best} vector, fp16: {vector_bytes(best_row['d']):,.0f} bytes "
      f"({vector_bytes(best_row['d']) / 1024:.0f} KiB)")
print(f"its {best_row['max_tokens']} token ids at log2 |V| = {token_bits:.1f} bits each: {text_bytes:,.0f} bytes")
print(f"one {ours.name} vector, bf16: {vector_bytes(ours.d):,.0f} bytes")
record("best_vector_bytes", vector_bytes(best_row["d"]))
record("best_text_bytes", text_bytes)
record("smollm2_vector_bytes", vector_bytes(ours.d))

# %% [markdown]
# ## Recap
# - A vector of `d` values at `b` bits stores `d * b` bits. Naming a token with a uniform code takes log2 |V|
#   bits; under a language model a token costs its surprisal, which is less for expected tokens and can be
#   more than log2 |V| for unexpected ones.
# - Capacity L_max = d * b / log2 |V| tokens: 591 for SmolLM2-135M, 3862 for Llama-3.1-8B.
# - Real texts fit far fewer tokens than L_max (utilisation 7.5-28.3 % in Table 1). Predictability is not
#   the reason (predictable text fits *more*): a trained vector uses only a small share of its bits, e.g.
#   Llama-3.1-8B removes IG = 4866 nats, about 7,020 bits of its 65,536. Notebooks 02 and 05 measure both sides.
# - "x1568" counts positions; in bytes one fp16 vector (8 KiB for Llama-3.1-8B) is larger than the token ids
#   it replaces (about 3.3 KB).
#
# ## Exercises
# Replace each `...` with a number and run the cell.
#
# ### Exercise 1 · ★☆☆ · ~1 min
# How many bits does one float16 value hold?

# %%
answer_1 = ...
exercises.check_bits_per_value("float16", answer_1);

# %% [markdown]
# ### Exercise 2 · ★☆☆ · ~3 min
# What is the capacity, in tokens, of one vector of Pythia-160M (d = 768, |V| = 50304) at 16 bits?

# %%
answer_2 = ...
exercises.check_capacity_tokens("pythia-160m", answer_2);

# %% [markdown]
# ### Exercise 3 · ★★☆ · ~3 min
# And of **four** vectors of Llama-3.2-1B (d = 2048, |V| = 128256)?

# %%
answer_3 = ...
exercises.check_capacity_tokens("llama-3.2-1b", answer_3, n_mem=4);

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
# # Exercise 1
# answer_1 = 16
# exercises.check_bits_per_value("float16", answer_1);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2: d * 16 / log2 |V| (about 787)
# import math
#
# answer_2 = 768 * 16 / math.log2(50304)
# exercises.check_capacity_tokens("pythia-160m", answer_2);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 3</summary>
#
# ```python
# # Exercise 3: four times one vector (about 7724)
# import math
#
# answer_3 = 4 * 2048 * 16 / math.log2(128256)
# exercises.check_capacity_tokens("llama-3.2-1b", answer_3, n_mem=4);
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

what_you_should_have_seen("01_bits_in_a_vector", record.figures,
                          ["n_models", "capacity_tokens", "capacity_bits", "smollm2_vector_bytes",
                           "paper_best_ratio"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [02 · How surprising is text?](02_how_surprising_is_text.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [00 · Welcome](00_welcome.ipynb) (roadmap) · [02 · How surprising is text?](02_how_surprising_is_text.ipynb) →

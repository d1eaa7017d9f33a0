# ---
# jupyter:
#   cramlab:
#     fast_parameters: {}
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
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (estimate) | Prerequisites |
# |---|---|---|---|
# | 1 of 3 | 2 s / 2 s (no model is loaded) | the same | 00 |
#
# **After this notebook you will be able to:**
# - count the bits a vector can store for each number format
# - compute the theoretical capacity of one vector in tokens, d * bits / log2 |V|
# - compare capacities across real models, with a chart and a widget
# - tell capacity from what the paper actually fitted

# %%
from cramlab import capacity as cap
from cramlab import exercises, plots, widgets
from cramlab.notebook_runner import Recorder
from cramlab.paper import TABLE1

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"   # any registered model (see the table below)
dtype = "bfloat16"       # the paper counts 16 bits per value
n_mem = 1                # number of vectors
fast = False
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
# The paper trains in bfloat16 and assumes **16 bits per value**. One vector of SmolLM2-135M therefore
# stores at most:

# %%
# NBVAL_CHECK_OUTPUT
shape = cap.get_shape("smollm2-135m")
print(f"d = {shape.d} values x 16 bits = {cap.capacity_bits(shape.d, 16):,} bits in one vector")

# %% [markdown]
# ## 2. Bits per token
#
# To name one token out of a vocabulary of |V| tokens, with no other knowledge, takes log2 |V| bits:

# %%
# NBVAL_CHECK_OUTPUT
for name in ["smollm2-135m", "pythia-160m", "llama-3.2-1b"]:
    v = cap.get_shape(name).vocab_size
    print(f"{name:<13} |V| = {v:>6}  ->  log2 |V| = {cap.bits_per_token(v):.2f} bits per token")

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
# below the capacity: *capacity utilisation* = tokens gained / L_max is 8-28 %.

# %%
# NBVAL_CHECK_OUTPUT
paper_rows = [dict(model=name, **row) for name, row in TABLE1.items()]
print(plots.text_table(paper_rows, ["model", "capacity_tokens", "max_tokens", "capacity_utilisation"],
                       formats={"capacity_utilisation": ".3f"},
                       headers={"capacity_tokens": "L_max", "max_tokens": "Max (paper)",
                                "capacity_utilisation": "utilisation"}))

# %%
best = max(TABLE1, key=lambda m: TABLE1[m]["max_tokens"])
ratio = cap.compression_ratio(TABLE1[best]["max_tokens"], 1)
print(f"largest: {best}, {ratio:.0f} tokens in one vector (the paper's x{ratio:.0f} compression)")
record("paper_best_ratio", ratio)

# %% [markdown]
# ## Recap
# - A vector of `d` values at `b` bits stores `d * b` bits; a token costs at most log2 |V| bits.
# - Capacity L_max = d * b / log2 |V| tokens: 591 for SmolLM2-135M, 3862 for Llama-3.1-8B.
# - Real texts fit far fewer tokens than L_max; notebooks 02 and 05 explain why (text is predictable,
#   and how predictable decides what fits).
#
# ## Exercises
# Replace each `...` with a number and run the cell.
#
# 1. How many bits does one float16 value hold?

# %%
answer_1 = ...
exercises.check_bits_per_value("float16", answer_1);

# %% [markdown]
# 2. What is the capacity, in tokens, of one vector of Pythia-160M (d = 768, |V| = 50304) at 16 bits?

# %%
answer_2 = ...
exercises.check_capacity_tokens("pythia-160m", answer_2);

# %% [markdown]
# 3. And of **four** vectors of Llama-3.2-1B (d = 2048, |V| = 128256)?

# %%
answer_3 = ...
exercises.check_capacity_tokens("llama-3.2-1b", answer_3, n_mem=4);

# %% [markdown]
# <details><summary>Solutions (try first)</summary>
#
# 1. `answer_1 = 16`
# 2. `answer_2 = 768 * 16 / math.log2(50304)` (about 787)
# 3. `answer_3 = 4 * 2048 * 16 / math.log2(128256)` (about 7724)
#
# </details>

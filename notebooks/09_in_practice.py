# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       max_steps: 3
#       model: tiny-llama
#       n_per_group: 1
#       n_tokens: 6
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 09 · In practice: should a team cram its records?
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 2 of 3 | full: 3 min 20 s (200 s Run All; alone, 2026-12-06, `docs/data/notebooks_full_cpu_08-09_2026-12-06.json`) / fast: 1 min 45 s (105 s, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: 1 min 9 s (69 s), 2026-11-28; the same code at scale (`experiments/poc_gpu.py`): 1,000 documents of 32 tokens in 134 s | 03 |
#
# People who read about the paper ask a business question: *if we turn our forms and logs into single
# vectors, do storage and transfer costs fall, does search get faster, can we get the text back, and what
# is the risk?* This notebook answers it on a small bundled corpus, with the same code as
# `cramlab poc DIR` runs on your own folder (docs/practice.md).
#
# **After this notebook you will be able to:**
# - read a verdict computed from a run (storage, recovery, search, cost, risk, what to use instead)
# - count the bytes of a text every honest way (UTF-8, token ids, zstd with a dictionary, lzma, a real
#   arithmetic coder driven by the model, and its Σ −log2 p bound) and compare them with its vector's bytes
# - say what cramming costs per document on your machine
# - test whether crammed vectors work as search keys, against BM25
# - explain why a vector must be protected like the text itself

# %%
import tempfile
from pathlib import Path

from cramlab import load_model
from cramlab.lab import poc_exercises as practice_exercises
from cramlab.lab.notebook_runner import Recorder
from cramlab.models.texts import encode
from cramlab.poc.coder import measure_alternatives
from cramlab.poc.corpus import demo_documents, write_demo_corpus
from cramlab.poc.embed import dense_for_retrieval
from cramlab.poc.html import figures
from cramlab.poc.privacy import privacy_check
from cramlab.poc.report import record_texts, summarise
from cramlab.poc.retrieval import by_record, evaluate_retrieval
from cramlab.poc.run import PocSettings, boilerplate_lines, normalise, read_documents, run_poc

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
model = "smollm2-135m"
n_per_group = 2          # documents per group: English records, English prose, Japanese records
n_tokens = 16            # tokens crammed per document (one vector)
lr = 0.1                 # the follow-up paper's lr for SmolLM2
max_steps = 300          # optimisation budget per document
batch_size = 8           # documents crammed together
seed = 0
device = "auto"          # auto: a GPU when there is one, else the CPU; or "cpu", "cuda"
out_dir = ""             # folder for the lines, vectors and report; empty: a temporary folder
fast = False             # True: the minutes-long budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    n_per_group, n_tokens, max_steps = 1, 8, 150

# %%
record = Recorder(record_path)
lm = load_model(model, device=device)
work = Path(out_dir or tempfile.mkdtemp(prefix="cramlab-09-"))
corpus = write_demo_corpus(work / "corpus", n_per_group, seed)
print(f"{lm.spec.name}: d = {lm.spec.d}, |V| = {lm.spec.vocab_size}; corpus in {corpus}")

# %% [markdown]
# ## 1. The records
#
# Three groups, all fictional and generated with a fixed seed: English form and log records (timestamps,
# ids, remarks with typos, a repeated header and footer), the kit's English prose passages, and Japanese
# forms and logs. Here is the first document of each.

# %%
docs = demo_documents(n_per_group, seed)
for group in ("records-en", "prose-en", "records-ja"):
    first = next(d for d in docs if d.group == group)
    print(f"--- {group}/{first.name}\n{first.text[:300]}\n")

# %% [markdown]
# ## 2. Cram every document, decode it back
#
# `run_poc` crams the first `n_tokens` tokens of each document into one vector, decodes the vector back
# greedily, rounds it to bfloat16, float16, fp8 and int8 and decodes each rounded copy again, and writes
# one line per finished document (kill it and run it again: it continues). Then it crams one query
# (half a vector's worth of tokens from a sentence start) per document for the search test of section 5.
# In the same run the alternatives are measured on the same texts: zstd with a trained dictionary, lzma,
# a real arithmetic coder driven by the same model (`constriction`), BM25 and dense embeddings (the same
# model's mean-pooled hidden states); and a separate process decodes one vector file (section 7).

# %%
settings = PocSettings(model=model, n_tokens=n_tokens, batch_size=batch_size,
                       cram=dict(lr=lr, max_steps=max_steps, seed=seed, progress=True))
# two bars: documents done, and the steps of the batch being crammed (a whole batch finishes together, so
# without the second one the first would sit at 0 for minutes on a CPU)
run = run_poc(lm, corpus, work / "report", settings, progress=True)
units = by_record(run.records)
dense = dense_for_retrieval(lm, [u["text"] for u in units], [q["text"] for q in run.queries])
retrieval = evaluate_retrieval(units, run.queries, dense=dense)
alternatives = measure_alternatives(lm, list(record_texts(run.records).values()))
sample = next((r for r in run.records if r["greedy_exact"]), run.records[0])
check = privacy_check(sample["vector_file"], model, sample["decoded_text"])
privacy = check | {"text_id": sample["text_id"], "equals_original": sample["greedy_exact"]}
summary = summarise(run, retrieval, privacy, alternatives)
print(f"{summary.n_texts} documents: reconstruction rate {summary.reconstruction_rate:.2f}, "
      f"mean token accuracy {summary.mean_token_accuracy:.3f}")
print(f"cost on this machine: {summary.encode_seconds_per_doc:.1f} s to cram, {summary.decode_seconds_per_doc:.2f} s "
      f"to decode per document -> {summary.seconds_per_1000_docs / 3600:.1f} hours for 1,000 documents")
record("reconstruction_rate", summary.reconstruction_rate)
record("encode_seconds_per_doc", summary.encode_seconds_per_doc)

# %% [markdown]
# ## The verdict, computed from this run
#
# Each row compares the crammed vectors with the best alternative measured above, on the same texts. The
# prices behind the cost row are examples (`CostModel`); pass your own to `cramlab poc`.

# %%
for lang in ("en", "ja"):
    for row in summary.verdict[lang]:
        print(f"[{row['question']}] {row['verdict']}: {row['crammed']} | {row['alternative']} -> {row['use_instead']}")
    print()
record("verdict", summary.verdict)

# %% [markdown]
# ## 3. Bytes: which representation is smallest?
#
# Every figure is for the crammed part of each document. The token ids take ⌈log2 |V|⌉ = 16 bits each; a
# general-purpose compressor pays a header on every short document (see the whole-corpus figures for the
# fair comparison). Σ −log2 p(token) (`lm`) is a *bound*, not a coder: the arithmetic coder below is a
# real one, and its measured bytes sit a little above the bound. The paper's ×1568 counts token
# positions per vector, not bytes.

# %%
fig_bytes, fig_groups, *fig_rest = figures(summary)
fig_bytes.show()
rows = {k: summary.to_dict()[f"bytes_{k}"] for k in ("utf8", "token_ids", "gzip", "bz2", "lzma", "zstd", "lm",
                                                     "vectors_fp32", "vectors_bf16", "vectors_fp8", "vectors_int8")}
print({k: f"{v} B ({v / summary.bytes_utf8:.2f}x UTF-8)" for k, v in rows.items() if v is not None})
print("the crammed texts compressed as ONE stream:", summary.corpus_bytes)
coder = summary.alternatives["coder"]
print(f"model-driven arithmetic coder (constriction): {coder['bytes']} B measured against the bound "
      f"{coder['bound_bytes']} B; encode {coder['encode_seconds']:.2f} s, decode {coder['decode_seconds']:.2f} s, "
      f"{coder['round_trip_exact']}/{coder['n_texts']} round trips exact")
print("smallest measured per-document representation (the bound excluded):", summary.smallest_method)
record("smallest_method", summary.smallest_method)
record("bf16_vectors_to_utf8", summary.bytes_vectors_bf16 / summary.bytes_utf8)

# %% [markdown]
# ## 4. Precision, and Japanese against English
#
# Does the vector still decode exactly after rounding? Each rounding is decoded on its own. Decoding casts
# the vectors to the model's dtype, so the last column counts the share of values the model sees changed:
# with bfloat16 weights fp32 and bf16 look identical to it, while fp16 is rounded twice (fp16, then bf16).
# The table then compares the groups: a mostly-English 135M model spends many more tokens per character
# on Japanese. Whether each of its tokens is more or less surprising is printed from the run, not assumed.

# %%
print(f"model dtype {summary.model_dtype}; exact share per precision {summary.exact_rate_by_precision}; "
      f"values changed as the model sees them {summary.changed_fraction_in_model_dtype}")
fig_groups.show()
for group, g in summary.by_group.items():
    print(f"{group:<11} tokens/char {g['tokens_per_char']:.2f}  bits/token {g['ce_per_token_bits']:.2f}  "
          f"bits/char {g['bits_per_char']:.2f}  chars/vector {g['chars_per_vector']:.0f}  "
          f"reconstruction {g['reconstruction_rate']:.2f}")
ja = {k: v for k, v in summary.by_group.items() if k.endswith("-ja")}
en = {k: v for k, v in summary.by_group.items() if k.endswith("-en")}
for jg, j in ja.items():
    per_token = "less" if all(j["ce_per_token_bits"] < e["ce_per_token_bits"] for e in en.values()) else "not less"
    en_token = ", ".join(f"{e['ce_per_token_bits']:.2f}" for e in en.values())
    en_char = ", ".join(f"{e['bits_per_char']:.2f}" for e in en.values())
    print(f"{jg}: {j['ce_per_token_bits']:.2f} bits per token against {en_token} for the English groups -> "
          f"{per_token} surprising per token; per character {j['bits_per_char']:.2f} bits against {en_char}")
record("by_group", summary.by_group)
record("exact_rate_by_precision", summary.exact_rate_by_precision)

# %% [markdown]
# ## 5. Search: vectors against BM25
#
# A query is half a vector's worth of tokens of a document's crammed text, from the start of a sentence;
# its target is that document. The query gets its
# vector the only way this method offers: it is crammed by itself. Cosine nearest neighbours over the
# document vectors compete with BM25 (`bm25s`) over the same text. Nothing in cramming asks related
# texts to get nearby vectors, so look at what the numbers say rather than what you hope.
#
# A hit is any document whose crammed text equals the query's document's (forms that share their first
# lines cram to the same text). Dense embeddings here are the same model's mean-pooled hidden states;
# `cramlab poc --embedder NAME_OR_DIR` uses a sentence-embedding model instead.

# %%
for fig in fig_rest:
    fig.show()
k = retrieval["top_k"]
print(f"recall@1: vectors {retrieval['vectors_recall_at_1']:.2f}, BM25 {retrieval['bm25_recall_at_1']:.2f}, "
      f"dense {retrieval['dense_recall_at_1']:.2f}, chance {retrieval['chance_recall_at_1']:.2f}; "
      f"recall@{k}: vectors {retrieval[f'vectors_recall_at_{k}']:.2f}")
print(f"search per query: vectors {retrieval['vectors_search_ms_per_query']:.3f} ms, BM25 "
      f"{retrieval['bm25_search_ms_per_query']:.3f} ms; but cramming the query took "
      f"{retrieval['query_encode_seconds_mean']:.1f} s")
record("retrieval", retrieval)

# %% [markdown]
# ## 6. Preprocessing: raw against normalised
#
# Messy records carry repeated boilerplate. Each normalisation step is cheap to measure in tokens; the
# cost of cramming falls with the tokens when whole documents are crammed (`--per-vector`).

# %%
found, _ = read_documents(corpus)
boiler = {g: boilerplate_lines([d.text for d in found if d.group == g]) for g in {d.group for d in found}}
steps_table = {}
for steps in ("none", "whitespace", "case", "boilerplate", "all"):
    n = sum(len(encode(lm.tokenizer, normalise(d.text, steps, boiler[d.group]))) for d in found)
    steps_table[steps] = n
    print(f"{steps:<12} {n:>6} tokens in {len(found)} documents")
print({g: sorted(v)[:2] for g, v in boiler.items()})
record("tokens_by_normalisation", steps_table)

# %% [markdown]
# ## 7. Privacy: the vector *is* the text
#
# A separate process got one vector file and the model's name, nothing else, and decoded it (in the run
# cell of section 2, so that the verdict's risk row rests on it).

# %%
print(f"{check.get('command')}\n-> {check.get('decoded_text')!r}\nsame text: {check['ok']}")
record("privacy_ok", check["ok"])

# %% [markdown]
# Anyone who holds the public model can read the vectors. Treat them like plaintext: encryption at rest,
# access control, retention rules. They are not an anonymised or obscured form of the records.

# %% [markdown]
# ### Exercise 1 · ★☆☆ · ~5 min
#
# How many bytes do the token ids of the first document take at ⌈log2 |V|⌉ bits per id? Work it out from
# `lm.spec.vocab_size` and `run.records[0]["n_tokens"]`.

# %%
answer_1 = ...   # your number of bytes
practice_exercises.check_token_id_bytes(answer_1, run.records[0], lm.spec.vocab_size);

# %% [markdown]
# ### Exercise 2 · ★★☆ · ~10 min
#
# In your run, which representation of the crammed texts is the smallest, per document? Answer with the
# name used in the summary (`utf8`, `token_ids`, `gzip`, `bz2`, `lzma`, `zstd`, `vectors_bf16`, ...; `lm`
# is a bound, not a coder, so it does not compete), and say in a sentence why that one wins.

# %%
answer_2 = ...   # a name, e.g. "gzip"
practice_exercises.check_smallest_method(answer_2, summary);

# %% [markdown]
# ## Recap
#
# The figures of this run, printed (docs/practice.md records the CPU demo and the GPU run with their
# commands):

# %%
s = summary
print(f"- one vector: {s.bytes_vectors_bf16 // s.n_vectors:,} bytes in bfloat16 whatever it holds; "
      f"{s.bytes_vectors_bf16 / s.bytes_utf8:.1f}x the UTF-8 of what it held here")
coder = s.alternatives.get("coder") or {}
print(f"- whole records rebuilt exactly: {s.reconstruction_rate:.0%}; the model-driven coder's round trips exact: "
      f"{coder.get('round_trip_exact', 0)}/{coder.get('n_texts', 0)}")
print(f"- recall@1: vectors {s.retrieval['vectors_recall_at_1']:.2f}, BM25 {s.retrieval['bm25_recall_at_1']:.2f}, "
      f"dense {s.retrieval['dense_recall_at_1']:.2f}")
print(f"- a second process rebuilt a record from its vector file: {s.privacy.get('ok')}")

# %% [markdown]
# Run it on your own folder: `cramlab poc DIR --out REPORT_DIR` (docs/practice.md).

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
# # Exercise 1: ids x ceil(log2 |V|) bits, rounded up to whole bytes
# import math
#
# answer_1 = math.ceil(run.records[0]["n_tokens"] * math.ceil(math.log2(lm.spec.vocab_size)) / 8)
# practice_exercises.check_token_id_bytes(answer_1, run.records[0], lm.spec.vocab_size);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2: the smallest of the byte figures, the bound `lm` left out (section 3 prints them all). On texts
# # this short every compressor pays a header per document, so the plain token ids can come out smallest
# answer_2 = summary.smallest_method
# practice_exercises.check_smallest_method(answer_2, summary);
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

what_you_should_have_seen("09_in_practice", record.figures,
                          ["reconstruction_rate", "exact_rate_by_precision.bf16", "bf16_vectors_to_utf8",
                           "smallest_method", "retrieval.vectors_recall_at_1", "retrieval.bm25_recall_at_1"], fast=fast);

# %% [markdown]
# ## Next
#
# This is the last notebook of the series. **Next: [00 · Welcome](00_welcome.ipynb)** (the roadmap), or run
# `cramlab poc DIR` on your own records (docs/practice.md).
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [08 · Beyond the paper](08_beyond.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap, the start) →

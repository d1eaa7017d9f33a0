"""The bundled proof-of-concept corpus: the kind of records the business question is about.

Owns: generating the demo documents (deterministic for a seed) and writing them as `.txt` files, one
folder per group, so that `cramlab poc --demo` runs the very same code path as `cramlab poc DIR`.
Does not own: reading a folder of documents or measuring anything (`cramlab.poc.run`).

Three groups, all fictional:
- `records-en`: synthetic English form and log records: timestamps, ids, free-text remarks with typos,
  and the boilerplate that real forms repeat (a header, a confidentiality footer).
- `prose-en`: the kit's own unseen prose passages (`cramlab/data/unseen.json`), the clean-text baseline.
- `records-ja`: Japanese forms and logs composed from hand-written remarks
  (`cramlab/data/practice_ja.json`) with seeded dates, ids and names.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

GROUPS = ("records-en", "prose-en", "records-ja")

_EN_REMARKS = [
    "forklift #{n} brakes feel soft agian, operator parked it by bay {b}. second time this week",
    "customer says parcel never arived, tracking shows delivered to reception at {h}:{m}",
    "freezer {n} reading {t}C since the morning shift, door seal looks torn",
    "invoice total doesnt match the quote, sent to accounts for a credit note",
    "label printer smudging barcodes on line {b}, cleaned the head, still faint",
    "new starter not yet trained on the pallet wrapper, booked for monday",
    "water leak from the aircon above desk {n}, put a wet floor sign out",
    "delivery short by {b} units, asked the warehouse to recount stock",
    "password reset link expired befor the user clicked it, sent a new one",
    "night batch stoped at step {b}, disk was full again on /var",
]
_EN_FORMS = ["Maintenance request", "Customer contact record", "Incident report", "Delivery issue"]
_EN_SITES = ["Leeds DC", "Bristol Hub", "Glasgow Store 12", "Reading Office"]
_EN_HEADER = "ACME Facilities Ltd - Internal form (v3.2). Fields marked * are mandatory."
_EN_FOOTER = ("This message was generated automatically, do not reply. CONFIDENTIAL: for internal use only. "
              "If you received it in error, delete it and notify the sender.")
_LOG_EVENTS = [
    ("INFO ", "order-svc", "checkout started cart_items={b}"),
    ("WARN ", "payment-gw", "retry {b}/3 timeout after {t}00ms"),
    ("ERROR", "inventory", "sync failed: upstream returned 503, will retry"),
    ("INFO ", "auth", "password changed for user, confirmation mail queued"),
    ("WARN ", "disk-mon", "usage {t}% on /var/log, rotate soon"),
]


@dataclass
class DemoDocument:
    """One generated document: its group (folder), file name and text."""
    group: str
    name: str
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def _japanese() -> dict:
    with resources.files("cramlab").joinpath("data/practice_ja.json").open(encoding="utf-8") as f:
        return json.load(f)


def _fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randint(1, 40), b=rng.randint(1, 9), h=rng.randint(8, 18),
                           m=f"{rng.randint(0, 59):02d}", t=rng.randint(5, 95))


def _timestamp(rng: random.Random, sep: str = "T") -> str:
    return (f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}{sep}{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")


def english_record(i: int, rng: random.Random) -> str:
    """A form (every other record: header and footer boilerplate around it) or a short log excerpt."""
    if i % 2 == 0:
        lines = [_EN_HEADER,
                 f"Form: {rng.choice(_EN_FORMS)}  Ref*: FRM-{rng.randint(10000, 99999)}",
                 f"Submitted*: {_timestamp(rng, ' ')}   Reporter: EMP-{rng.randint(1000, 9999):05d}",
                 f"Site: {rng.choice(_EN_SITES)}",
                 f"Remarks: {_fill(rng.choice(_EN_REMARKS), rng)}",
                 f"Status: {rng.choice(['OPEN', 'OPEN', 'CLOSED', 'ON HOLD'])}   Priority: P{rng.randint(1, 4)}",
                 "", _EN_FOOTER]
        return "\n".join(lines)
    req = f"{rng.getrandbits(24):06x}"
    lines = []
    for _ in range(rng.randint(3, 5)):
        level, svc, msg = rng.choice(_LOG_EVENTS)
        lines.append(f"{_timestamp(rng)}.{rng.randint(0, 999):03d}Z {level} [{svc}] req={req} "
                     f"user=u_{rng.randint(10000, 99999)} {_fill(msg, rng)}")
    return "\n".join(lines)


def japanese_record(i: int, rng: random.Random) -> str:
    """A Japanese form (with its boilerplate footer) or log excerpt."""
    ja = _japanese()
    if i % 2 == 0:
        month, day, hour, minute = rng.randint(1, 12), rng.randint(1, 28), rng.randint(8, 19), rng.randint(0, 59)
        date = f"2025/{month:02d}/{day:02d} {hour:02d}:{minute:02d}"
        lines = [f"【{rng.choice(ja['form_titles'])}】",
                 f"受付番号: JP-{rng.randint(100000, 999999)}",
                 f"日時: {date}",
                 f"担当: {rng.choice(ja['staff'])}  拠点: {rng.choice(ja['sites'])}",
                 f"内容: {rng.choice(ja['remarks'])}",
                 f"対応状況: {rng.choice(['未完了', '対応中', '完了'])}",
                 "", ja["footer"]]
        return "\n".join(lines)
    lines = []
    for _ in range(rng.randint(2, 4)):
        level, event, action = rng.choice(ja["log_events"])
        lines.append(f"{_timestamp(rng, ' ')} [{level}] {event} 注文番号=A-{rng.randint(10000, 99999)} {action}")
    return "\n".join(lines)


def demo_documents(n_per_group: int = 4, seed: int = 0) -> list[DemoDocument]:
    """`n_per_group` documents of each group, the same for the same seed (all groups interleaved)."""
    from cramlab.models.texts import unseen_passages
    rng = random.Random(seed)
    passages = unseen_passages()
    order = list(range(len(passages)))
    rng.shuffle(order)
    docs = []
    for i in range(n_per_group):
        docs.append(DemoDocument("records-en", f"record-{i:03d}.txt", english_record(i, rng)))
        p = passages[order[i % len(passages)]]
        skip = i // len(passages)                 # beyond the passages: the same ones from a later sentence
        text = " ".join(re.split(r"(?<=[.!?])\s+", p["text"])[skip:]) if skip else p["text"]
        docs.append(DemoDocument("prose-en", f"{p['id']}{f'@{skip}' if skip else ''}.txt", text))
        docs.append(DemoDocument("records-ja", f"record-{i:03d}.txt", japanese_record(i, rng)))
    return docs


def write_demo_corpus(folder, n_per_group: int = 4, seed: int = 0) -> Path:
    """Write the demo documents under `folder/<group>/<name>` (UTF-8); returns the folder."""
    folder = Path(folder)
    for doc in demo_documents(n_per_group, seed):
        path = folder / doc.group / doc.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc.text, encoding="utf-8")
    return folder

"""Reading real-world record files for a proof of concept: encodings, unreadable files, content hashes.

Owns: `read_documents` (every file under a folder matching a pattern; `encoding="auto"` detects Shift_JIS,
CP932, EUC-JP, UTF-16 and UTF-8 with the `charset-normalizer` library and records what each file decoded
as), the reasons a file is skipped (unreadable, e.g. a permission error; binary; undecodable; empty),
which are listed and never fatal, and each file's content hash (`sha256` of its bytes), on which resuming
is keyed so that an edited file is crammed again.
Does not own: normalising, planning or cramming (`cramlab.poc.run`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from cramlab.errors import BadInputError

ENCODINGS = ("utf-8", "auto")
_BOMS = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"\xef\xbb\xbf": "utf-8-sig"}


@dataclass
class Document:
    doc_id: str  # path relative to the folder, POSIX style
    group: str  # first folder under the root ("." for files at the top)
    text: str
    encoding: str = "utf-8"  # what the file was decoded as
    sha256: str = ""  # of the file's bytes: resume redoes a document whose file changed


@dataclass
class SkippedFile:
    path: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def decode_bytes(raw: bytes, encoding: str = "utf-8") -> tuple[str, str]:
    """(text, encoding used). `utf-8` is strict; `auto` honours a BOM, else asks charset-normalizer.
    Raises UnicodeDecodeError / ValueError with the reason when the bytes are not text in any of them."""
    if encoding not in ENCODINGS:
        raise BadInputError(f"--encoding {encoding!r}: use utf-8 or auto")
    if encoding == "utf-8":
        return raw.decode("utf-8").lstrip("\ufeff"), "utf-8"
    for bom, name in _BOMS.items():
        if raw.startswith(bom):
            return raw.decode(name).lstrip("\ufeff"), name
    try:  # plain UTF-8 first: short ASCII files confuse detectors
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw, cp_isolation=["cp932", "shift_jis", "euc_jp", "utf_16", "utf_8", "iso2022_jp"]).best()
    if best is None:
        raise ValueError("no encoding among UTF-8, UTF-16, Shift_JIS/CP932, EUC-JP decodes it")
    return str(best), best.encoding


def read_documents(folder, pattern: str = "*.txt", encoding: str = "utf-8") -> tuple[list[Document], list[SkippedFile]]:
    """Every file under `folder` matching `pattern` (recursively). A file that cannot be read, is binary,
    does not decode or is empty comes back as a SkippedFile with the reason; nothing here raises for one
    bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"{folder} is not a folder; give the folder that holds your .txt files (or --demo)")
    if encoding not in ENCODINGS:
        raise BadInputError(f"--encoding {encoding!r}: use utf-8 or auto")
    docs, skipped = [], []
    for path in sorted(folder.rglob(pattern)):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        try:
            raw = path.read_bytes()
        except OSError as exc:  # permission denied, vanished, a device error: listed, not fatal
            skipped.append(
                SkippedFile(rel, f"unreadable ({exc.strerror or type(exc).__name__}); check its permissions")
            )
            continue
        is_utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        if b"\x00" in raw and not (encoding == "auto" and is_utf16):
            skipped.append(
                SkippedFile(
                    rel,
                    "binary (contains NUL bytes)"
                    + ("; if it is UTF-16 text, pass --encoding auto" if is_utf16 else ""),
                )
            )
            continue
        try:
            text, used = decode_bytes(raw, encoding)
        except UnicodeDecodeError as exc:
            hint = "pass --encoding auto, or convert it with iconv" if encoding == "utf-8" else "convert it with iconv"
            skipped.append(SkippedFile(rel, f"not {encoding.upper()} (bad byte at offset {exc.start}); {hint}"))
            continue
        except ValueError as exc:
            skipped.append(SkippedFile(rel, f"undecodable: {exc}; convert it to UTF-8 with iconv"))
            continue
        if not text.strip():
            skipped.append(SkippedFile(rel, "empty"))
            continue
        parts = Path(rel).parts
        docs.append(Document(rel, parts[0] if len(parts) > 1 else ".", text, used, hashlib.sha256(raw).hexdigest()))
    if not docs and not skipped:
        raise BadInputError(f"no files matching {pattern!r} under {folder}; check the folder or pass --pattern")
    return docs, skipped

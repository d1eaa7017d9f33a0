"""The kit's public address in the notebooks: Colab badges and Colab install cells appear only once it is set.

The kit has no public repository yet, so a badge pointing at a placeholder would be a broken promise. The
address is one setting, `Repository` under `[project.urls]` in pyproject.toml; `make publish-links
REPO=owner/name` (`python -m cramlab.lab.publish owner/name`) sets it and writes, into every notebook's `.py`
source, a Colab badge under the title and a first code cell that installs the kit when (and only when) it
runs on Colab. `python -m cramlab.lab.publish --remove` takes them out again. Then `make notebooks-sync`.

Owns: reading and writing that setting, and the badge line and Colab cell of the notebook sources. Does not
own: the rest of the notebooks, or syncing their `.ipynb` twins (jupytext).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cramlab.errors import BadInputError

ROOT = Path(__file__).resolve().parents[2]
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
BADGE = ("# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}.ipynb)")
COLAB_TAG = "colab-install"
COLAB_CELL = f'''# %% tags=["{COLAB_TAG}"]
# On Google Colab only: install the kit (elsewhere `make install` has done it). Detected, not asked.
import sys

if "google.colab" in sys.modules:
    import subprocess

    KIT = "cramlab[lab] @ git+https://github.com/{{repo}}"   # the kit's repository
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", KIT], check=True)

'''
# `Repository = "..."` inside the [project.urls] table (before the next table)
_URLS_REPOSITORY = re.compile(r'^\[project\.urls\]\s*$(?:(?!^\[).)*?^Repository\s*=\s*"([^"]*)"',
                              re.MULTILINE | re.DOTALL)
_BADGE_LINE = re.compile(r"^# \[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n#\n", re.MULTILINE)
_COLAB_CELL = re.compile(r'^# %%(?: tags=\["' + COLAB_TAG + r'"\])?\n# On Google Colab only: install the kit.*?'
                         r'(?=^# %%)', re.MULTILINE | re.DOTALL)


def repository(pyproject: str | Path = ROOT / "pyproject.toml") -> str | None:
    """`owner/name` from `[project.urls] Repository` (a github.com address), or None while it is not set."""
    m = _URLS_REPOSITORY.search(Path(pyproject).read_text())   # a regex: tomllib needs Python 3.11
    url = m.group(1) if m else None
    if not url:
        return None
    m = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", url)
    if not m or not REPO_NAME.match(m.group(1)):
        raise BadInputError(f"[project.urls] Repository = {url!r} is not https://github.com/owner/name; fix it "
                            "in pyproject.toml or run `make publish-links REPO=owner/name`")
    return m.group(1)


def set_repository(repo: str | None, pyproject: str | Path = ROOT / "pyproject.toml") -> None:
    """Write `Repository = "https://github.com/<repo>"` under `[project.urls]` (the table is added if
    absent); None removes the line."""
    path = Path(pyproject)
    text = path.read_text()
    line = f'Repository = "https://github.com/{repo}"\n' if repo else ""
    if re.search(r"^Repository\s*=.*\n", text, re.MULTILINE):
        text = re.sub(r"^Repository\s*=.*\n", line, text, count=1, flags=re.MULTILINE)
    elif not repo:
        return
    if not repo:        # drop a [project.urls] table left empty (it was added for this line)
        text = re.sub(r"\n*^\[project\.urls\]\n(?=\s*(?:^\[|\Z))", "\n", text, flags=re.MULTILINE)
        text = text.rstrip("\n") + "\n"
    elif re.search(r"^\[project\.urls\]\s*\n", text, re.MULTILINE):
        text = re.sub(r"^\[project\.urls\]\s*\n", "[project.urls]\n" + line, text, count=1, flags=re.MULTILINE)
    else:
        text = text.rstrip("\n") + "\n\n[project.urls]\n" + line
    path.write_text(text)


def with_links(source: str, name: str, repo: str | None) -> str:
    """A notebook's `.py` source without any badge or Colab cell, then with this `repo`'s (None: without)."""
    source = _COLAB_CELL.sub("", _BADGE_LINE.sub("", source))
    if repo is None:
        return source
    title = re.search(r"^# # .*\n#\n", source, re.MULTILINE)
    if title is None:
        raise BadInputError(f"{name}: no '# NN · title' header cell to put the badge under")
    source = source[:title.end()] + BADGE.format(repo=repo, name=name) + "\n#\n" + source[title.end():]
    first_code = re.search(r"^# %%(?! \[markdown\]).*$", source, re.MULTILINE)
    at = first_code.start() if first_code else len(source)
    return source[:at] + COLAB_CELL.format(repo=repo) + source[at:]


def publish(repo: str | None, notebook_dir: str | Path = ROOT / "notebooks",
            pyproject: str | Path = ROOT / "pyproject.toml") -> list[Path]:
    """Set the address (None: unset it) and rewrite every notebook source to match; returns those changed."""
    if repo is not None and (not REPO_NAME.match(repo) or repo.lower().startswith(("owner/", "user/", "your"))):
        raise BadInputError(f"REPO must be the public repository as owner/name, got {repo!r}")
    set_repository(repo, pyproject)
    changed = []
    for path in sorted(Path(notebook_dir).glob("[0-9][0-9]_*.py")):
        old = path.read_text()
        new = with_links(old, path.stem, repo)
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cramlab.lab.publish", description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", help="owner/name of the public repository")
    parser.add_argument("--remove", action="store_true", help="take every badge and Colab cell out")
    args = parser.parse_args(argv)
    try:
        if not args.remove and not args.repo:
            raise BadInputError("give the repository (`make publish-links REPO=owner/name`) or --remove")
        changed = publish(None if args.remove else args.repo)
    except BadInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(changed)} notebook source(s) rewritten; now run `make notebooks-sync`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

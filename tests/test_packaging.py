"""The two install routes name the same packages; the README keeps its two commands."""
import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_pyproject_and_environment_yml_name_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py_names = {_name(r) for r in project["dependencies"]}
    py_names |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_list = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_names = {_name(r) for r in pip_list if not r.startswith("-e")}
    assert py_names == env_names
    assert "python=3.11" in env["dependencies"]


def test_lab_extra_is_part_of_dev():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {_name(r) for r in extras["lab"]} <= {_name(r) for r in extras["dev"]}
    assert {"jupyterlab", "papermill", "nbval", "ipykernel"} <= {_name(r) for r in extras["lab"]}
    assert {"pytest", "hypothesis", "ruff"} <= {_name(r) for r in extras["dev"]}


def test_readme_first_screen_has_exactly_two_setup_commands():
    first_screen = (ROOT / "README.md").read_text().split("\n---\n")[0]
    block = re.search(r"```bash\n(.*?)```", first_screen, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile  # the local CPU wheel, not a multi-GB CUDA build

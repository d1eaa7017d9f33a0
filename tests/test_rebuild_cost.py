"""experiments/rebuild_cost.py: the prices the rebuild rule weighs (a build and capture, a step), per shape."""
import json
import subprocess
import sys

import pytest
from repo_scripts import REPO, load_script

rebuild_cost = load_script("experiments/rebuild_cost.py")


def test_shapes_parse_and_a_bad_one_names_the_fix():
    assert rebuild_cost.parse_shapes("4096x24, 256x128") == [(4096, 24), (256, 128)]
    for bad in ("256", "0x128", "256x1", "axb"):
        with pytest.raises(SystemExit, match="ROWSxTOKENS"):
            rebuild_cost.parse_shapes(bad)


def test_each_shape_gets_its_build_and_step_price_on_the_tiny_model(tmp_path):
    out = tmp_path / "cost.json"
    subprocess.run([sys.executable, str(REPO / "experiments/rebuild_cost.py"), str(out), "--model", "tiny-llama",
                    "--device", "cpu", "--shapes", "3x8,2x16", "--steps", "2"], check=True, cwd=REPO,
                   capture_output=True)
    result = json.loads(out.read_text())
    assert [(r["rows"], r["tokens"]) for r in result["shapes"]] == [(3, 8), (2, 16)]
    for r in result["shapes"]:
        assert r["build_seconds"] > 0 and r["step_ms"] > 0 and r["captured"] is False
        assert r["steps_per_rebuild"] == pytest.approx(r["build_seconds"] / (r["step_ms"] / 1e3), rel=0.05)
        assert r["cast_each_step_ms"] > 0
        assert r["precast_speedup"] == pytest.approx(r["cast_each_step_ms"] / r["step_ms"], rel=0.05)
    assert result["preset"] == "grid-2025" and "rebuild_cost.py" in result["command"]

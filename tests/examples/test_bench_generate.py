"""The generated benchmark workloads (bench/workloads/) are valid, up to date and deterministic."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bench import engrams, generate

REPO = Path(__file__).resolve().parents[2]
BOBRAPET = Path(sys.executable).parent / "bobrapet"
WORKLOADS = REPO / "bench" / "workloads"


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    again = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == again
    committed = {p.name: p.read_bytes() for p in WORKLOADS.glob("*.yaml")}
    assert committed == again, "bench/workloads is stale: run `python bench/generate.py`"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert generate.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "w1-chain-100.yaml").write_text("# edited\n")
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1


def test_every_workload_is_valid(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BOBRAPET), "--home", str(tmp_path / "home"), "validate", "-f", str(WORKLOADS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr, done.stderr
    for workload in generate.WORKLOADS:
        assert f"story/{workload.story} valid" in done.stdout


@pytest.mark.parametrize("workload", generate.WORKLOADS, ids=lambda w: w.id)
def test_workload_has_the_shape_of_workloads_md(workload: generate.Workload) -> None:
    (story,) = list(yaml.safe_load_all((WORKLOADS / workload.file).read_text()))
    steps = story["spec"]["steps"]
    assert story["metadata"]["name"] == workload.story
    assert len(steps) == workload.steps
    refs = {"wait-sync", "wait-async"} if workload.family == "W6" else {"step", "join"}
    assert all(s["ref"]["name"] in refs for s in steps)
    names = [s["name"] for s in steps]
    assert len(set(names)) == len(names)
    if workload.kind == "W1":  # a strict chain reading the previous output
        for prev, step in itertools.pairwise(steps):
            assert step["needs"] == [prev["name"]]
            assert step["with"]["n"] == f"{{{{ steps.{prev['name']}.output.n }}}}"
    if workload.kind == "W2":  # root, parallel branches, one join reading them all
        join = steps[-1]
        assert join["needs"] == names[1:-1]
        assert len(join["with"]["values"]) == workload.steps - 2
        assert all(s["needs"] == ["root"] for s in steps[1:-1])
    if workload.family == "W6":  # independent steps that each wait 1 s
        assert all("needs" not in s and s["with"]["seconds"] == 1 for s in steps)
    if workload.kind == "W3":  # every step needs the whole previous layer
        width = 10
        for i, step in enumerate(steps[width:], start=width):
            layer = i // width
            assert step["needs"] == [f"l{layer - 1}s{j}" for j in range(width)]


def test_the_doubled_workloads_are_twice_their_base() -> None:
    by_id = {w.id: w for w in generate.WORKLOADS}
    doubled = [w for w in generate.WORKLOADS if w.doubles]
    assert {w.family for w in doubled} >= {"W1", "W2", "W4"}
    for w in doubled:
        base = by_id[w.doubles or ""]
        assert w.family == base.family
        assert w.total_steps - (2 if w.family == "W2" else 0) == 2 * (
            base.total_steps - (2 if w.family == "W2" else 0)
        )


def test_the_engrams_are_trivial() -> None:
    assert engrams.step({"n": 41}, None) == {"n": 42}
    assert engrams.step({}, None) == {"n": 1}
    assert engrams.join({"values": [1, 2, 3]}, None) == {"n": 6, "count": 3}


def test_w5_is_w1_and_w2_at_scale() -> None:
    by_id = {w.id: w for w in generate.WORKLOADS}
    scaled = {w.id: w for w in generate.WORKLOADS if w.scales}
    assert set(scaled) == {"W5-1000", "W5-802"}
    assert scaled["W5-1000"].steps == 10 * by_id["W1-100"].steps
    assert scaled["W5-802"].steps - 2 == 4 * (by_id["W2-202"].steps - 2)
    for w in scaled.values():
        assert w.kind == by_id[w.scales or ""].kind


async def test_the_w6_engrams_wait_and_count() -> None:
    assert engrams.wait_sync({"n": 1, "seconds": 0}, None) == {"n": 2}
    assert await engrams.wait_async({"n": 2, "seconds": 0}, None) == {"n": 3}

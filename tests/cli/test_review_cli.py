"""CLI defects found in review: empty input, namespaces, finalizers, odd files, conflicts, logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TEMPLATE = """\
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata:
  name: greet
spec:
  version: "1"
  image: example/greet
  supportedModes: [job]
"""

ENGRAM = """\
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata:
  name: greeter
spec:
  templateRef: {name: greet}
"""

STORY = """\
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata:
  name: hello
spec:
  steps:
    - name: a
      ref: {name: greeter}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "in.yaml") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text", ["", "---\n---\n", "# only a comment\n"])
@pytest.mark.parametrize("command", ["apply", "validate"])
def test_input_without_objects_is_an_error(cli: Cli, tmp_path: Path, command: str, text: str) -> None:
    result = cli(command, "-f", write(tmp_path, text))
    assert result.code == 1
    assert "no objects" in result.err
    assert "in.yaml" in result.err


def test_empty_stdin_is_an_error(cli: Cli) -> None:
    result = cli("apply", "-f", "-", stdin="")
    assert result.code == 1
    assert "no objects" in result.err


def test_validate_with_namespace_leaves_cluster_scoped_kinds_alone(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "---\n".join([TEMPLATE, ENGRAM, STORY]))
    result = cli("validate", "-f", path, "-n", "team-a")
    assert result.code == 0, result.err
    assert "cluster-scoped" not in result.err
    # The Engram defined in the same file is found in the namespace given by -n.
    assert "not found" not in result.err
    assert "story/hello valid" in result.out


def test_validate_rejects_namespace_conflicting_with_the_manifest(cli: Cli, tmp_path: Path) -> None:
    engram = ENGRAM.replace("  name: greeter\n", "  name: greeter\n  namespace: team-b\n")
    path = write(tmp_path, "---\n".join([TEMPLATE, engram]))
    result = cli("validate", "-f", path, "-n", "team-a")
    assert result.code == 1
    assert 'does not match --namespace "team-a"' in result.err
    # apply says the same thing.
    applied = cli("apply", "-f", path, "-n", "team-a")
    assert applied.code == 1
    assert 'does not match --namespace "team-a"' in applied.err


def test_delete_reports_a_deletion_blocked_by_a_foreign_finalizer(cli: Cli, tmp_path: Path) -> None:
    engram = ENGRAM.replace("  name: greeter\n", "  name: greeter\n  finalizers: [example.com/keep]\n")
    assert cli("apply", "-f", write(tmp_path, "---\n".join([TEMPLATE, engram]))).code == 0
    result = cli("delete", "engram", "greeter")
    assert result.code == 0
    assert "engram/greeter deleted" not in result.out
    assert "example.com/keep" in result.out
    assert cli("get", "engram", "greeter").code == 0


def test_delete_story_removes_it_after_its_finalizer(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", "-f", write(tmp_path, "---\n".join([TEMPLATE, ENGRAM, STORY]))).code == 0
    shown = cli("get", "story", "hello", "-o", "json")
    assert "story.bubustack.io/finalizer" in shown.out
    result = cli("delete", "story", "hello")
    assert result.code == 0
    assert "story/hello deleted" in result.out
    assert cli("get", "story", "hello").code == 1


def test_read_commands_do_not_create_a_state_directory(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli("describe", "story", "x").code == 1
    assert cli("get", "stories").code == 0
    assert not home.exists()


def test_binary_file_names_the_file_and_the_problem(cli: Cli, tmp_path: Path) -> None:
    result = cli("apply", "-f", write(tmp_path, b"\x00\xf1\xff\xfe garbage", "blob.yaml"))
    assert result.code == 1
    assert "blob.yaml" in result.err
    assert "UTF-8" in result.err
    assert "codec" not in result.err


def test_duplicate_mapping_keys_are_rejected_with_their_line(cli: Cli, tmp_path: Path) -> None:
    text = ENGRAM.replace("  name: greeter\n", "  name: greeter\n  name: other\n")
    result = cli("validate", "-f", write(tmp_path, "---\n".join([TEMPLATE, text])))
    assert result.code == 1
    assert 'duplicate key "name"' in result.err
    assert "line 14" in result.err
    assert "Traceback" not in result.err


def test_second_apply_of_examples_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    import sqlite3

    assert cli("catalog", "install").code == 0  # examples/webhook.yaml uses the built-in `webhook`
    assert cli("apply", "-f", str(EXAMPLES)).code == 0
    db = tmp_path / "home" / "state.db"

    def events() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("select count(*) from events").fetchone()[0])

    before = events()
    again = cli("apply", "-f", str(EXAMPLES))
    assert again.code == 0
    assert "created" not in again.out and "configured" not in again.out
    assert events() == before


def test_binary_stdin_is_a_clear_error_in_a_real_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "bobrapet.cli.main", "--home", str(tmp_path / "h"), "apply", "-f", "-"],
        input=b"\x00\xf1\xff\xfe\xed\xa0\x80 garbage",
        capture_output=True,
        timeout=120,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "<stdin>: not a UTF-8 text file" in err
    assert "Traceback" not in err


async def test_apply_retries_when_a_controller_writes_between_read_and_update(tmp_path: Path) -> None:
    """A status write by a running controller must not turn ``apply`` into a Conflict error."""
    from typing import Any

    from bobrapet.api import kinds
    from bobrapet.api.manifest import parse_text
    from bobrapet.cli.commands.apply import apply_one
    from bobrapet.store.sqlite import SqliteClient

    class RacingClient(SqliteClient):
        """Writes the object's status right after the first read, like a controller would."""

        raced = False

        async def get(self, kind: Any, name: str, namespace: str | None = None) -> Any:
            obj = await super().get(kind, name, namespace)
            if not self.raced and kind == kinds.ENGRAM:
                self.raced = True
                await self.update_status({**obj, "status": {"validationStatus": "valid"}})
            return obj

    client = RacingClient(tmp_path / "state.db")
    try:
        for doc in parse_text(TEMPLATE + "---\n" + ENGRAM, "in.yaml"):
            await apply_one(client, doc, None, False)
        changed = ENGRAM.replace("spec:\n", "spec:\n  version: v2\n")
        (doc,) = parse_text(changed, "in.yaml")
        verb, label, _ = await apply_one(client, doc, None, False)
        assert (verb, label) == ("configured", "engram/greeter")
        stored = await client.get(kinds.ENGRAM, "greeter", "default")
        assert stored["spec"]["version"] == "v2"
    finally:
        client.close()


def test_delete_file_rejects_namespace_conflicting_with_the_manifest(cli: Cli, tmp_path: Path) -> None:
    engram = ENGRAM.replace("  name: greeter\n", "  name: greeter\n  namespace: team-b\n")
    path = write(tmp_path, "---\n".join([TEMPLATE, engram]))
    assert cli("apply", "-f", path).code == 0
    result = cli("delete", "-f", path, "-n", "team-a")
    assert result.code == 1
    assert 'does not match --namespace "team-a"' in result.err
    assert cli("get", "engram", "greeter", "-n", "team-b").code == 0


def test_reapplying_a_manifest_with_finalizers_keeps_the_controller_finalizer(
    cli: Cli, tmp_path: Path
) -> None:
    story = STORY.replace("  name: hello\n", "  name: hello\n  finalizers: [example.com/audit]\n")
    path = write(tmp_path, "---\n".join([TEMPLATE, ENGRAM, story]))
    assert cli("apply", "-f", path).code == 0
    again = cli("apply", "-f", path)
    assert again.code == 0
    assert "story/hello unchanged" in again.out
    import json

    shown = json.loads(cli("get", "story", "hello", "-o", "json").out)
    assert set(shown["metadata"]["finalizers"]) == {"example.com/audit", "story.bubustack.io/finalizer"}
    # Listing finalizers without the user's own removes it, and only it.
    bare = STORY.replace("  name: hello\n", "  name: hello\n  finalizers: []\n")
    assert "story/hello configured" in cli("apply", "-f", write(tmp_path, bare, "bare.yaml")).out
    shown = json.loads(cli("get", "story", "hello", "-o", "json").out)
    assert shown["metadata"]["finalizers"] == ["story.bubustack.io/finalizer"]


def test_describe_secret_shows_sizes_not_values(cli: Cli, tmp_path: Path) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n"
    assert cli("apply", "-f", write(tmp_path, secret)).code == 0
    shown = cli("describe", "secret", "creds")
    assert shown.code == 0
    assert "hunter2" not in shown.out and "aHVudGVyMg==" not in shown.out
    assert "password: 7 bytes" in shown.out


def test_directory_apply_skips_hidden_directories(cli: Cli, tmp_path: Path) -> None:
    """``apply -f .`` in a project must not read .git/, .github/, .venv/ or .bobrapet/."""
    project = tmp_path / "project"
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (project / ".hidden.yaml").write_text("not: a manifest\n")
    (project / "manifests").mkdir()
    (project / "manifests" / "all.yaml").write_text("---\n".join([TEMPLATE, ENGRAM]))
    result = cli("apply", "-f", str(project))
    assert result.code == 0, result.err
    assert "engram/greeter created" in result.out
    # A hidden file named explicitly is still read.
    named = cli("validate", "-f", str(project / ".hidden.yaml"))
    assert named.code == 1
    assert "apiVersion" in named.err


def test_interrupt_exits_130_without_traceback(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from typing import Any

    from bobrapet.cli.commands import get

    def interrupted(coro: Any) -> Any:
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(get, "run", interrupted)
    result = cli("get", "stories")
    assert result.code == 130
    assert "Traceback" not in result.err


def test_controller_failure_during_settle_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A real process: controller errors during ``settle`` print as warnings, no traceback."""
    import subprocess
    import sys

    path = write(tmp_path, "---\n".join([TEMPLATE, ENGRAM, STORY]))
    script = f"""
import sys
from bobrapet.host import embedded
from bobrapet.controllers import story

async def broken(self, request):
    raise RuntimeError("the story controller broke")

story.StoryReconciler._reconcile = broken
original = embedded.ControlPlane.settle

async def quick_settle(self, timeout=10.0):
    await original(self, timeout=1.0)

embedded.ControlPlane.settle = quick_settle
from bobrapet.cli.main import main
sys.exit(main(["--home", {str(tmp_path / "h")!r}, "apply", "-f", {path!r}]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "warning: story default/hello: reconcile failed" in done.stderr
    assert "the story controller broke" in done.stderr

"""``bobrapet run -f PATH...``: apply manifests, start a StoryRun of their Story, drive it to the end.

Invariants: every usage problem (bad ``-i``, unreadable ``--inputs-file``, ambiguous or
missing Story, bad ``--timeout``/``-o``) is reported before anything is written; apply
messages and progress go to stderr, the result alone to stdout (see ``wait``). Inputs are
read by :mod:`bobrapet.cli.inputs`.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bobrapet.api import kinds
from bobrapet.api.errors import AlreadyExists, NotFound, StatusError
from bobrapet.api.kinds import STORY, STORY_RUN
from bobrapet.api.manifest import Document
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.apply import apply_documents
from bobrapet.cli.commands.common import load_documents, namespace_option, run, sorted_for_apply
from bobrapet.cli.commands.wait import (
    EXIT_INTERRUPTED,
    check_output,
    drive,
    exit_code,
    failed_steps_with_logs,
    home_flag,
    interrupted,
    output_option,
    parse_timeout,
    print_result,
    run_command_hint,
    timeout_option,
    workers_option,
)
from bobrapet.cli.errors import format_status_error
from bobrapet.cli.inputs import InputOption, InputsError, build_input_sets, keep_declared_strings
from bobrapet.host import serve_file
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.pool import start_early
from bobrapet.host.storage import offload_run_inputs

if TYPE_CHECKING:
    from bobrapet.executors.local.executor import LocalExecutor

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_NAME_ATTEMPTS = 5


# --------------------------------------------------------------------------- story choice


def load_manifests(paths: list[str]) -> list[Document]:
    """``load_documents``, with unreadable manifests as usage errors (exit 2): nothing runs."""
    try:
        return load_documents(paths, "run")
    except typer.Exit as done:
        if done.exit_code == EXIT_REJECTED:
            raise typer.Exit(EXIT_USAGE) from None
        raise


def stories_in(docs: Sequence[Document], namespace: str | None) -> list[tuple[str, str]]:
    """(name, namespace) of every Story document, in file order."""
    found: list[tuple[str, str]] = []
    for doc in docs:
        obj: dict[str, Any] = doc.obj if isinstance(doc.obj, dict) else {}
        raw_meta = obj.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if kinds.for_object(str(obj.get("apiVersion")), str(obj.get("kind"))) is STORY and meta.get("name"):
            found.append((str(meta["name"]), str(meta.get("namespace") or namespace or "default")))
    return found


def pick_story(docs: Sequence[Document], wanted: str | None, namespace: str | None) -> tuple[str, str]:
    """The Story to run: ``--story`` (from the files or already applied), else the only one."""
    stories = stories_in(docs, namespace)
    if wanted:
        for name, ns in stories:
            if name == wanted:
                return name, ns
        return wanted, namespace or "default"
    if len(stories) == 1:
        return stories[0]
    if not stories:
        raise fail(
            "the files define no Story; add one or pass --story NAME to run a Story already applied",
            EXIT_USAGE,
        )
    names = ", ".join(name for name, _ in stories)
    raise fail(f"the files define several Stories ({names}); choose one with --story NAME", EXIT_USAGE)


# --------------------------------------------------------------------------- command


@app.command("run")
def run_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(metavar="[PATH]...", help="Manifests to apply first, like -f (file, directory or -)."),
    ] = None,
    filenames: Annotated[
        list[str] | None,
        typer.Option(
            "--filename",
            "-f",
            metavar="PATH",
            help="Manifests to apply first: file, directory or -; repeatable.",
        ),
    ] = None,
    story: Annotated[
        str | None,
        typer.Option(
            "--story", metavar="NAME", help="The Story to run (needed when the files hold several)."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="RUN", help="Name of the StoryRun (default: <story>-<random>)."),
    ] = None,
    inputs: InputOption = None,
    inputs_file: Annotated[
        str | None,
        typer.Option(
            "--inputs-file",
            metavar="FILE",
            help="Inputs: a YAML/JSON object (one run), or a list / JSON Lines of objects "
            "(one run per entry); -i overrides.",
        ),
    ] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
    output: Annotated[str | None, output_option()] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Create the run, print its name and return.")
    ] = False,
    timeout: Annotated[str | None, timeout_option()] = None,
    workers: Annotated[int | None, workers_option()] = None,
) -> None:
    """Apply manifests, start a StoryRun of their Story and drive it to the end with live progress.

    Manifests are given as arguments or with -f (both may be mixed). An --inputs-file
    holding a list or JSON Lines starts one run per entry and drives them all; the exit
    code is 1 when any of them did not succeed.
    """
    check_output(output)
    seconds = parse_timeout(timeout)
    try:
        sets = build_input_sets(inputs or [], inputs_file)
    except InputsError as err:
        raise fail(str(err), EXIT_USAGE) from None
    files = [*(paths or []), *(filenames or [])]
    if not files and not story:
        raise fail(
            "nothing to run: pass -f FILE (or FILE as an argument: the Story's manifests) "
            "and/or --story NAME",
            EXIT_USAGE,
        )
    if name and len(sets) > 1:
        raise fail(
            f"--name: --inputs-file starts {len(sets)} runs; leave --name out (names are generated)",
            EXIT_USAGE,
        )
    docs = sorted_for_apply(load_manifests(files)) if files else []
    story_name, ns = pick_story(docs, story, namespace)
    if len(sets) > 1:
        _run_many(
            docs,
            namespace,
            story_name,
            ns,
            sets,
            tuple(inputs or ()),
            no_wait,
            output,
            seconds,
            timeout,
            workers,
        )
    values = sets[0]
    request = RunRequest(docs, namespace, story_name, ns, name, values, no_wait, seconds, timeout, workers)
    request.assignments = tuple(inputs or ())
    try:
        final, logged = run(_run(request))
    except KeyboardInterrupt:
        if request.created is None:
            state.err.print("interrupted before the run was created", markup=False, highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        raise interrupted(request.created["metadata"]["name"], ns) from None
    if no_wait:
        run_name = final["metadata"]["name"]
        state.out.out(run_name, highlight=False)
        state.err.print(
            f"storyrun/{run_name} created; drive it with `{run_command_hint('wait', run_name, ns)}`",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_OK)
    print_result(final, output, logged)
    raise typer.Exit(exit_code(final))


def _run_many(
    docs: list[Document],
    namespace: str | None,
    story: str,
    story_namespace: str,
    sets: list[dict[str, Any]],
    assignments: tuple[str, ...],
    no_wait: bool,
    output: str | None,
    seconds: float | None,
    timeout: str | None,
    workers: int | None,
) -> None:
    """Start one run per inputs entry and (unless --no-wait) drive them all; exits."""
    from bobrapet.cli.batch import drive_many, exit_code_many, print_many

    created: list[dict[str, Any]] = []

    async def go() -> list[dict[str, Any]]:
        async with ControlPlane(state.home) as plane:
            pool = await prepare(plane, docs, engine=not no_wait, workers=workers)
            try:
                if docs:
                    failures = await apply_documents(
                        plane.client, docs, namespace, dry_run=False, out=state.err
                    )
                    if failures:
                        raise fail(f"not running: {failures} object(s) were rejected (see above)", EXIT_USAGE)
                    if no_wait:
                        await plane.settle()
                story_obj = await find_story(plane, story, story_namespace)
                schema = (story_obj.get("spec") or {}).get("inputsSchema")
                # Every entry is validated before any run is created: a bad entry 7 starts nothing.
                checked = [
                    await offload_run_inputs(
                        plane, story_namespace, keep_declared_strings(values, assignments, schema)
                    )
                    for values in sets
                ]
                await check_entries(plane, story, story_namespace, checked)
                for values in checked:
                    created.append(await create_run(plane, story, story_namespace, None, values))
                if no_wait:
                    return created
                targets = [(story_namespace, str(r["metadata"]["name"])) for r in created]
                return await drive_many(
                    plane, targets, timeout=seconds, timeout_text=timeout, workers=workers, pool=pool
                )
            finally:
                if pool is not None:
                    await pool.close()

    try:
        finals = run(go())
    except KeyboardInterrupt:
        hint = f"bobrapet{home_flag()} wait --all"
        what = f"{len(created)} run(s) created keep their state; resume with `{hint}`"
        state.err.print(f"interrupted: {what}", markup=False, highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if no_wait:
        for obj in finals:
            state.out.out(str(obj["metadata"]["name"]), highlight=False)
        state.err.print(
            f"{len(finals)} storyrun(s) created; drive them with `bobrapet{home_flag()} wait --all`",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_OK)
    print_many(finals, output)
    raise typer.Exit(exit_code_many(finals))


async def prepare(
    plane: ControlPlane, docs: list[Document], *, engine: bool, workers: int | None
) -> LocalExecutor | None:
    """Get ready to apply ``docs`` and drive runs, three things side by side: the store opens
    in a thread (a new home's database waits on the disk), the worker pool starts (its
    processes import in parallel; only when an ``engine`` will drive runs) and this thread
    loads the admission rules. Returns the pool, for the engine (the caller closes it); no
    pool when a ``bobrapet serve`` of the home runs (its engine drives the runs).

    Without documents nothing is opened early: a missing home stays missing (``--story``).
    """
    opening = asyncio.ensure_future(plane.open()) if docs else None
    pool = None
    try:
        if engine and serve_file.live(plane.home) is None:  # a running serve drives the runs
            pool = await start_early(workers)
        if docs:
            import bobrapet.api.admission.pipeline  # noqa: F401  (loaded on the first write otherwise)
        if opening is not None:
            await opening
    except BaseException:
        if opening is not None:
            if not opening.done():
                await asyncio.wait({opening})  # the thread finishes anyway; the plane closes its client
            elif not opening.cancelled():
                opening.exception()  # retrieved: the error being raised is the first one
        if pool is not None:
            await pool.close()
        raise
    return pool


async def check_entries(plane: ControlPlane, story: str, namespace: str, sets: list[dict[str, Any]]) -> None:
    """Dry-run admission of one run per entry; the first rejected entry exits 2, naming its index."""
    for index, values in enumerate(sets, start=1):
        body: dict[str, Any] = {
            "apiVersion": STORY_RUN.api_version,
            "kind": STORY_RUN.kind,
            "metadata": {"name": generated_name(story), "namespace": namespace},
            "spec": {"storyRef": {"name": story}, **({"inputs": values} if values else {})},
        }
        try:
            await plane.client.create(body, dry_run=True)
        except StatusError as err:
            state.err.print(f"error: --inputs-file entry {index} is rejected:", markup=False, highlight=False)
            for line in format_status_error(err):
                state.err.print("  " + line, markup=False, highlight=False)
            raise typer.Exit(EXIT_USAGE) from None


@dataclass
class RunRequest:
    """What ``run`` was asked to do, plus the run once created (for the Ctrl-C message)."""

    docs: list[Document]
    namespace: str | None  # -n as given (apply places documents with it)
    story: str
    story_namespace: str
    name: str | None
    inputs: dict[str, Any]
    no_wait: bool
    timeout: float | None
    timeout_text: str | None
    workers: int | None
    assignments: tuple[str, ...] = ()  # the -i texts, to keep string-typed values as typed
    created: dict[str, Any] | None = None


async def _run(req: RunRequest) -> tuple[dict[str, Any], list[str]]:
    """The final run (the created one with ``--no-wait``) and its failed steps that wrote logs."""
    async with ControlPlane(state.home) as plane:
        pool = await prepare(plane, req.docs, engine=not req.no_wait, workers=req.workers)
        try:
            if req.docs:
                failures = await apply_documents(
                    plane.client, req.docs, req.namespace, dry_run=False, out=state.err
                )
                if failures:
                    raise fail(f"not running: {failures} object(s) were rejected (see above)", EXIT_USAGE)
                if req.no_wait:
                    await plane.settle()  # statuses up to date, as after `apply`
            story_obj = await find_story(plane, req.story, req.story_namespace)
            schema = (story_obj.get("spec") or {}).get("inputsSchema")
            inputs = keep_declared_strings(req.inputs, req.assignments, schema)
            req.created = await create_run(plane, req.story, req.story_namespace, req.name, inputs)
            if req.no_wait:
                return req.created, []
            final = await drive(
                plane,
                req.created,
                story=story_obj,
                timeout=req.timeout,
                timeout_text=req.timeout_text,
                workers=req.workers,
                pool=pool,
            )
        finally:
            if pool is not None:
                await pool.close()
        return final, await failed_steps_with_logs(plane, final)


async def find_story(plane: ControlPlane, name: str, namespace: str) -> dict[str, Any]:
    try:
        if not plane.exists:
            raise NotFound(STORY.kind, name, STORY.group)
        return await plane.client.get(STORY, name, namespace)
    except NotFound:
        pass
    known = (
        sorted(s["metadata"]["name"] for s in await plane.client.list(STORY, namespace))
        if plane.exists
        else []
    )
    there = f"; stories there: {', '.join(known)}" if known else "; apply it first (-f FILE)"
    raise fail(f'--story: story "{name}" not found in namespace "{namespace}"{there}', EXIT_USAGE)


def generated_name(story: str) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
    return f"{story[:247]}-{suffix}"


async def create_run(
    plane: ControlPlane, story: str, namespace: str, name: str | None, inputs: dict[str, Any]
) -> dict[str, Any]:
    """Create the StoryRun (admission validates the inputs; large ones are offloaded to storage
    first); usage errors exit 2."""
    spec: dict[str, Any] = {"storyRef": {"name": story}}
    inputs = await offload_run_inputs(plane, namespace, inputs)
    if inputs:
        spec["inputs"] = inputs
    attempts = 1 if name else _NAME_ATTEMPTS
    for attempt in range(attempts):
        body: dict[str, Any] = {
            "apiVersion": STORY_RUN.api_version,
            "kind": STORY_RUN.kind,
            "metadata": {"name": name or generated_name(story), "namespace": namespace},
            "spec": spec,
        }
        warnings: list[str] = []
        try:
            created = await plane.client.create(body, warnings=warnings)
        except AlreadyExists:
            if name:
                raise fail(
                    f'--name: storyrun "{name}" already exists in namespace "{namespace}"; choose another '
                    f"name, or drive it with `{run_command_hint('wait', name, namespace)}`",
                    EXIT_USAGE,
                ) from None
            if attempt == attempts - 1:
                raise
            continue
        except StatusError as err:
            for line in format_status_error(err):
                state.err.print(line, markup=False, highlight=False)
            if any(c.field.startswith("spec.inputs") for c in err.causes):
                state.err.print("  (inputs come from -i key=value and --inputs-file)", markup=False)
            raise typer.Exit(EXIT_USAGE) from None
        for warning in warnings:
            state.err.print(f"warning: storyrun/{body['metadata']['name']}: {warning}", markup=False)
        return await mark_pending(plane, created)
    raise AssertionError("unreachable")  # pragma: no cover


async def mark_pending(plane: ControlPlane, created: dict[str, Any]) -> dict[str, Any]:
    """Show a run nobody has started yet as ``Pending`` (not an empty phase).

    An engine that already reconciled the run wins: its write makes ours a Conflict, ignored.
    """
    if (created.get("status") or {}).get("phase"):
        return created
    try:
        return await plane.client.update_status({**created, "status": {"phase": "Pending"}})
    except StatusError as err:
        if err.reason != "Conflict":
            raise
        return created

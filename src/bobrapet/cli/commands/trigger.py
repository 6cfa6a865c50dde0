"""``bobrapet trigger STORY``: submit one durable StoryTrigger and show what it became.

Invariants: usage problems (bad ``-i``, unreadable or non-object ``--inputs-file``,
``--key`` with ``--token``, a key template that cannot render, bad ``-o``) exit 2 before
anything is written. Inputs larger than ``storyrun.max-inline-inputs-size`` are offloaded to
the home's storage before the trigger is stored (a storage failure exits 1).
The trigger is submitted through :mod:`bobrapet.triggers` (``--key K``:
mode ``key`` with ``K`` as the key template; ``--token T``: mode ``token``; else mode
``none``), so the same key gives the same trigger and the same run. The controllers are
settled in this process, so the StoryTrigger controller has decided when the trigger is
printed: a summary line by default, the whole object with ``-o json|yaml`` (stdout). Exit 0
for ``Created`` or ``Reused``, 1 for ``Rejected``, an undecided trigger, an unknown Story or
a key already used for another request. The StoryRun is not run here: an engine drives it
(the hint on stderr says how).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import STORY, STORY_TRIGGER
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import namespace_option, run
from bobrapet.cli.commands.wait import RESULT_FORMATS, check_output, run_command_hint
from bobrapet.cli.errors import format_status_error
from bobrapet.cli.inputs import InputOption, InputsError, build_inputs, keep_declared_strings
from bobrapet.cli.output import dump_json, dump_yaml
from bobrapet.host.embedded import ControlPlane

if TYPE_CHECKING:
    from bobrapet.triggers import DeliveryMode, TriggerRequest

# bobrapet.triggers (templating, jinja2) is imported where the command runs: `--help` and
# the other commands start without it.


def _mode(key: str | None, token: str | None) -> DeliveryMode:
    if key is not None and token is not None:
        raise fail("--key and --token are alternatives: give a key template or a token, not both", EXIT_USAGE)
    if key is not None:
        return "key"
    return "token" if token is not None else "none"


@app.command("trigger")
def trigger_command(
    story: Annotated[str, typer.Argument(metavar="STORY", help="The Story to start.")],
    inputs: InputOption = None,
    inputs_file: Annotated[
        str | None,
        typer.Option("--inputs-file", metavar="FILE", help="Inputs: one YAML/JSON object; -i overrides."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="TEMPLATE",
            help='Deduplicate by this key (a template over inputs, e.g. "{{ inputs.orderId }}", '
            "or plain text): the same key starts the Story once.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", metavar="TOKEN", help="Deduplicate by this delivery token, as given."),
    ] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="json|yaml", help="Print the StoryTrigger as json or yaml."),
    ] = None,
) -> None:
    """Submit a durable StoryTrigger for STORY; the StoryTrigger controller decides whether it
    creates a StoryRun (Created), reuses one (Reused) or is Rejected.

    The StoryRun starts when an engine drives it (`bobrapet wait RUN`).
    """
    check_output(output)
    mode = _mode(key, token)
    try:
        values = build_inputs(inputs or [], inputs_file)
    except InputsError as err:
        raise fail(str(err), EXIT_USAGE) from None
    from bobrapet.triggers import TriggerRequest, decision_of

    ns = namespace or "default"
    request = TriggerRequest(story, namespace=ns, inputs=values, mode=mode, token=token, key_template=key)
    trigger = run(_trigger(request, tuple(inputs or ())))
    _print(trigger, output)
    decision = decision_of(trigger)
    if decision in ("Created", "Reused"):
        run_name = str(trigger["status"]["storyRunRef"]["name"])
        state.err.print(
            f"storyrun/{run_name} runs when an engine drives it: `{run_command_hint('wait', run_name, ns)}`",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_OK)
    if decision is None:
        state.err.print(
            "error: no decision yet: no StoryTrigger controller decided the trigger in time; "
            "it is stored and is decided when controllers run again (any `bobrapet` command that writes)",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(EXIT_REJECTED)


async def _trigger(request: TriggerRequest, assignments: tuple[str, ...]) -> dict[str, Any]:
    from bobrapet.storage.errors import StorageError
    from bobrapet.triggers import DeliveryError, IdentityConflict, StoryNotFound, build_trigger, submit

    async with ControlPlane(state.home) as plane:
        try:
            schema = await _inputs_schema(plane, request)
            inputs = keep_declared_strings(dict(request.inputs or {}), assignments, schema)
            offload = plane.submission_offload()
            built = await build_trigger(plane.client, replace(request, inputs=inputs), offload_inputs=offload)
            stored = await submit(plane.client, built)
        except StoryNotFound as err:
            raise fail(f"{err}; apply it first (bobrapet apply -f FILE)") from None
        except DeliveryError as err:
            raise fail(str(err), EXIT_USAGE) from None
        except IdentityConflict as err:
            raise fail(str(err)) from None
        except StorageError as err:
            raise fail(f"cannot offload the inputs to storage: {err.message}") from None
        except StatusError as err:
            for line in format_status_error(err):
                state.err.print(line, markup=False, highlight=False)
            raise typer.Exit(EXIT_REJECTED) from None
        await plane.settle()
        meta = stored["metadata"]
        return await plane.client.get(STORY_TRIGGER, meta["name"], meta["namespace"])


async def _inputs_schema(plane: ControlPlane, request: TriggerRequest) -> Any:
    """The Story's ``inputsSchema`` (None without one); :class:`StoryNotFound` when missing."""
    from bobrapet.triggers import StoryNotFound

    if not plane.exists:
        raise StoryNotFound(request.story, request.target_namespace)
    try:
        story = await plane.client.get(STORY, request.story, request.target_namespace)
    except NotFound:
        stories = await plane.client.list(STORY, request.target_namespace)
        known = sorted(str(s["metadata"]["name"]) for s in stories)
        raise StoryNotFound(request.story, request.target_namespace, known) from None
    return (story.get("spec") or {}).get("inputsSchema")


def summary(trigger: dict[str, Any]) -> str:
    """``storytrigger/NAME Decision (Reason) -> storyrun/RUN``, or the reason's message."""
    status = trigger.get("status") or {}
    name = trigger["metadata"]["name"]
    decision = status.get("decision") or "Pending"
    reason = f" ({status['reason']})" if status.get("reason") else ""
    run_name = (status.get("storyRunRef") or {}).get("name")
    if run_name and decision != "Rejected":
        return f"storytrigger/{name} {decision}{reason} -> storyrun/{run_name}"
    message = f": {status['message']}" if status.get("message") else ""
    return f"storytrigger/{name} {decision}{reason}{message}"


def _print(trigger: dict[str, Any], output: str | None) -> None:
    if output in RESULT_FORMATS:
        text = dump_json(trigger) if output == "json" else dump_yaml(trigger).rstrip("\n")
        state.out.out(text, highlight=False)
        return
    state.out.out(summary(trigger), highlight=False)

"""``bobrapet crds``: print the CustomResourceDefinitions for a Kubernetes cluster."""

from __future__ import annotations

from bobrapet.cli.app import app, state


@app.command("crds")
def crds_command() -> None:
    """Print apiextensions.k8s.io/v1 CRDs for every Bobrapet kind (pipe to kubectl apply -f -)."""
    from bobrapet.api.crds import render_crds_yaml

    state.out.out(render_crds_yaml().rstrip("\n"), highlight=False)

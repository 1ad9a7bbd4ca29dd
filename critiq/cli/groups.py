"""Option groups: a set of typer flags that a command receives as one typed value."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

Command = TypeVar("Command", bound=Callable[..., Any])
# flag parameter name -> (Annotated[type, typer.Option(...)], default)
Flags = Mapping[str, tuple[Any, Any]]


def option_group(name: str, flags: Flags, build: Callable[[dict[str, Any]], object]) -> Callable[[Command], Command]:
    """A decorator that replaces the command's parameter ``name`` by ``flags``; it passes ``build(values)`` as ``name``.

    A flag whose name the command (or another group on it) already uses is a ``TypeError`` at import time.
    """

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command)
        if name not in signature.parameters:
            raise TypeError(f"{command.__name__} has no parameter {name!r} for its option group")
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
            if p.name != name
        ]
        clash = sorted(set(flags) & {p.name for p in own})
        if clash:
            raise TypeError(f"{command.__name__}: the {name!r} options {clash} clash with its other parameters")
        added = [
            inspect.Parameter(flag, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for flag, (annotation, default) in flags.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {flag: kwargs.pop(flag) for flag in flags}
            return command(*args, **{name: build(values)}, **kwargs)

        parameters = [*own, *added]
        wrapper.__dict__["__signature__"] = signature.replace(parameters=parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return typing.cast(Command, wrapper)

    return decorate

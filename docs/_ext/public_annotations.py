"""A griffe extension for the API reference: annotations that name a type alias of a private module
(``Timeout`` of ``kopechka._transport``, ``TextFilter`` of ``kopechka._mail``) show what the alias
stands for (``float | tuple[float, float]``), so the reference names nothing a user cannot import.
An ``Annotated[X, ...]`` alias shows as ``X`` (``Money`` is a ``Decimal``); a private ``TypeVar``
(a method that returns its own instance) shows as ``Self``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import griffe


def _private(path: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in path.split(".")[1:])


class PublicAnnotations(griffe.Extension):
    """Inline the private type aliases in every annotation of the package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._pkg = pkg
        self._walk(pkg)

    def _walk(self, obj: griffe.Object) -> None:
        for member in obj.members.values():
            if member.is_alias:
                continue
            if isinstance(member, griffe.Function):
                for parameter in member.parameters:
                    parameter.annotation = self._inline(parameter.annotation)
                member.returns = self._inline(member.returns)
            elif isinstance(member, griffe.Attribute):
                member.annotation = self._inline(member.annotation)
            if isinstance(member, (griffe.Class, griffe.Module)):
                self._walk(member)

    def _inline(self, expr: Any) -> Any:
        if isinstance(expr, griffe.ExprName):
            return self._value(expr) or expr
        if isinstance(expr, griffe.Expr):
            for field in dataclasses.fields(expr):
                value = getattr(expr, field.name)
                if isinstance(value, griffe.Expr):
                    object.__setattr__(expr, field.name, self._inline(value))
                elif isinstance(value, list):
                    object.__setattr__(expr, field.name, [self._inline(v) for v in value])
        return expr

    def _value(self, name: griffe.ExprName) -> Any:
        try:
            path = name.canonical_path
        except Exception:  # an unresolvable name stays as it is
            return None
        prefix = self._pkg.path + "."
        if not path.startswith(prefix) or not _private(path):
            return None
        try:
            target = self._pkg[path[len(prefix) :]]
        except (KeyError, griffe.AliasResolutionError):
            return None
        if not isinstance(target, griffe.Attribute) or not isinstance(target.value, griffe.Expr):
            return None
        value = target.value  # shared, not copied: rendering only reads it
        if isinstance(value, griffe.ExprCall) and str(value.function) == "TypeVar":
            return griffe.ExprName("Self")
        if isinstance(value, griffe.ExprSubscript) and str(value.left) == "Annotated":
            elements = getattr(value.slice, "elements", [value.slice])
            return self._inline(elements[0])
        return self._inline(value)

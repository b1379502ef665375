"""graphql-core's validation rules, with their visitor methods looked up once per rule class.

`validate` creates every rule anew for each document, and each new rule object finds its
`enter_<kind>` / `leave_<kind>` methods by name (four `getattr`s per node kind, ~700 per
document for our ~30 rules): in a small document never seen before, that lookup was ~40% of
validation (issue #20). Here each rule is created with a method table that finds them in a
per-class cache instead, and binds them to the new object: the same methods, called in the same
order, so the same errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphql import ASTValidationRule, ValidationContext
from graphql.language.visitor import EnterLeaveVisitor

Method = Callable[..., Any] | None

#: (rule class, node kind) -> its enter and leave functions (unbound), as `Visitor` finds them.
_METHODS: dict[tuple[type, str], tuple[Method, Method]] = {}


def _methods(cls: type, kind: str) -> tuple[Method, Method]:
    """What `Visitor.get_enter_leave_for_kind` finds, looked up on the class once."""
    try:
        return _METHODS[cls, kind]
    except KeyError:
        enter = getattr(cls, f"enter_{kind}", None) or getattr(cls, "enter", None)
        leave = getattr(cls, f"leave_{kind}", None) or getattr(cls, "leave", None)
        _METHODS[cls, kind] = enter, leave
        return enter, leave


class _MethodTable(dict[str, EnterLeaveVisitor]):
    """A rule's `enter_leave_map`, filled from `_METHODS` on first use of each kind."""

    def __init__(self, rule: ASTValidationRule) -> None:
        super().__init__()
        self.rule = rule

    def __missing__(self, kind: str) -> EnterLeaveVisitor:
        rule = self.rule
        enter, leave = _methods(type(rule), kind)
        found = EnterLeaveVisitor(
            enter.__get__(rule) if enter else None, leave.__get__(rule) if leave else None
        )
        self[kind] = found
        return found


def _looked_up_once(rule: type[ASTValidationRule]) -> Callable[[ValidationContext], ASTValidationRule]:
    def create(context: ValidationContext) -> ASTValidationRule:
        created = rule(context)
        own = set(vars(created)) - {"enter_leave_map"}
        if not any(name.startswith(("enter", "leave")) for name in own):  # methods on the class only
            created.enter_leave_map = _MethodTable(created)
        return created

    return create


def fast_rules(rules: Sequence[type[ASTValidationRule]]) -> tuple[type[ASTValidationRule], ...]:
    """`rules`, each created with the per-class method table (what `validate` takes as rules:
    it only calls each with the validation context)."""
    return tuple(_looked_up_once(rule) for rule in rules)  # type: ignore[misc]

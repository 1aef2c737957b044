"""Errors of flow definitions and flow execution (spec personalize.md §1.6, §2.7)."""

from __future__ import annotations

from innkeeper.core.errors import Conflict, Invalid, NotFound


class FlowInvalid(Invalid):
    """A flow definition failed validation; ``problems`` lists every reason."""

    code = "INVALID_FLOW"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Bad Request", developer_message="; ".join(problems)[:2000])
        self.problems = problems


class FlowNotFound(NotFound):
    """No flow with that ref or friendly id."""

    code = "FLOW_NOT_FOUND"


class FlowConflict(Conflict):
    """The change is not allowed in the flow's current status (e.g. editing a live flow)."""

    code = "FLOW_CONFLICT"


class CallFlowsInvalid(Invalid):
    """A callFlows request was rejected; ``code`` is the stable machine code of §2.7."""

    def __init__(self, code: str, cause: str) -> None:
        super().__init__("Bad Request", developer_message=f"{code}: {cause}")
        self.code = code

"""compile_audience / compile_rules (§6.2): validation, short-circuit, segments, filter, errors, needs."""

from __future__ import annotations

from typing import Any

import pytest

from innkeeper.personalize.conditions import (
    BUILTINS,
    ConditionError,
    JsSandbox,
    compile_audience,
    compile_rules,
)
from tests.personalize.conditions.guests import anonymous_ctx, customer_ctx

CUSTOMER = {"template": "guest_type", "params": {"type": "customer"}}
VISITOR = {"template": "guest_type", "params": {"type": "visitor"}}


def test_empty_audiences_pass_everyone(sandbox: JsSandbox) -> None:
    for raw in (None, {}, {"combinator": "AND", "conditions": [], "segments": {"mode": "ANY", "refs": []}}):
        audience = compile_audience(raw, sandbox=sandbox)
        assert audience.always and not audience.uses_js and audience.needs == frozenset()
        assert audience.evaluate(anonymous_ctx()).passed is True


def test_and_or_not_and_one_level_of_nesting(sandbox: JsSandbox) -> None:
    raw = {
        "combinator": "AND",
        "conditions": [
            {"combinator": "OR", "conditions": [VISITOR, {"template": "device", "params": {"devices": ["desktop"]}}]},
            {"not": {"template": "guest_has_email", "params": {}}},
        ],
    }
    audience = compile_audience(raw, sandbox=sandbox)
    assert audience.evaluate(anonymous_ctx()).passed is True  # visitor, no email
    assert audience.evaluate(customer_ctx()).passed is False  # desktop, but has an email
    assert (
        compile_audience({"combinator": "or", "conditions": [VISITOR, CUSTOMER]}, sandbox=sandbox)
        .evaluate(customer_ctx())
        .passed
    )


def test_short_circuit_skips_later_conditions(sandbox: JsSandbox) -> None:
    probe = {"script": "print('ran'); true", "name": "probe"}
    and_audience = compile_audience({"conditions": [VISITOR, probe]}, sandbox=sandbox)
    result = and_audience.evaluate(customer_ctx())
    assert result.passed is False and "probe" not in result.filters and result.logs == []
    or_audience = compile_audience({"combinator": "OR", "conditions": [CUSTOMER, probe]}, sandbox=sandbox)
    assert or_audience.evaluate(customer_ctx()).logs == []
    assert or_audience.evaluate(anonymous_ctx()).logs == ["ran"]


@pytest.mark.parametrize(
    ("mode", "refs", "customer", "anonymous"),
    [
        ("ANY", ["high_value", "other"], True, False),
        ("ALL", ["high_value", "seg-1"], True, False),
        ("ALL", ["high_value", "other"], False, False),
        ("NONE", ["high_value"], False, True),
    ],
)
def test_segments(sandbox: JsSandbox, mode: str, refs: list[str], customer: bool, anonymous: bool) -> None:
    audience = compile_audience({"segments": {"mode": mode, "refs": refs}}, sandbox=sandbox)
    assert audience.evaluate(customer_ctx()).passed is customer
    assert audience.evaluate(anonymous_ctx()).passed is anonymous


def test_filter_is_the_last_truthy_value_and_filters_map_names(sandbox: JsSandbox) -> None:
    raw = {
        "conditions": [
            {"script": "({offer: 'A'})", "name": "first"},
            {"script": "({offer: 'B', tier: guest.dataExtensions[0].values.loyalty.tier})", "name": "second"},
            CUSTOMER,
        ]
    }
    result = compile_audience(raw, sandbox=sandbox).evaluate(customer_ctx())
    assert result.passed is True
    assert result.filter == {"offer": "B", "tier": "gold"}
    assert result.filters == {"first": {"offer": "A"}, "second": {"offer": "B", "tier": "gold"}, "guest_type": True}
    assert result.errors == []


def test_failing_conditions_are_false_with_errors(sandbox: JsSandbox) -> None:
    raw = {
        "combinator": "OR",
        "conditions": [{"script": "null.x", "name": "broken"}, {"script": "while(1){}", "name": "slow"}],
    }
    result = compile_audience(raw, sandbox=sandbox).evaluate(anonymous_ctx())
    assert result.passed is False and result.filter is None
    assert result.errors[0].startswith("broken: TypeError")
    assert result.errors[1].startswith("slow: the condition exceeded its time limit")


def test_total_js_budget_is_shared_by_the_conditions_of_one_evaluation() -> None:
    sandbox = JsSandbox(timeout_ms=50, total_ms=120)
    loop = {"script": "while (true) {}"}
    result = compile_audience({"combinator": "OR", "conditions": [loop, loop, loop, loop]}, sandbox=sandbox).evaluate(
        anonymous_ctx()
    )
    assert len(result.errors) == 4
    assert "budget" in result.errors[-1]


def test_script_params_are_substituted_and_exposed(sandbox: JsSandbox) -> None:
    script = 'guest.guestType === "[[type | enum(customer, visitor) | customer]]" && params.type !== undefined'
    audience = compile_audience({"conditions": [{"script": script, "params": {"type": "visitor"}}]}, sandbox=sandbox)
    assert audience.evaluate(anonymous_ctx()).passed is True
    assert audience.evaluate(customer_ctx()).passed is False


def test_builtin_converted_to_custom_gives_the_same_answer(sandbox: JsSandbox) -> None:
    builtin = BUILTINS["has_abandoned_cart"]
    params = {"days": 7, "op": ">", "n": 50}
    native = compile_audience({"conditions": [{"template": "has_abandoned_cart", "params": params}]}, sandbox=sandbox)
    custom = compile_audience(
        {"conditions": [{"script": builtin.js_source, "params": builtin.validate(params)}]}, sandbox=sandbox
    )
    for ctx in (customer_ctx(), anonymous_ctx()):
        assert native.evaluate(ctx).passed is custom.evaluate(ctx).passed


def test_custom_templates_resolve_by_friendly_id(sandbox: JsSandbox) -> None:
    audience = compile_audience(
        {"conditions": [{"template": "is_gold", "params": {}}]},
        sandbox=sandbox,
        custom_templates={"is_gold": "guest.dataExtensions.some(function (d) { return d.values.loyalty; })"},
    )
    assert audience.uses_js
    assert audience.evaluate(customer_ctx()).passed is True


def test_needs_and_uses_js(sandbox: JsSandbox) -> None:
    light = compile_audience({"conditions": [CUSTOMER]}, sandbox=sandbox)
    assert light.needs == frozenset() and not light.uses_js
    history = compile_audience(
        {
            "conditions": [
                {"template": "orders_count", "params": {"op": ">", "n": 0}},
                {"script": "guest.sessions.length"},
            ]
        },
        sandbox=sandbox,
    )
    assert history.needs == {"orders", "sessions"} and history.uses_js
    legacy = compile_rules(
        [{"id": "c-1", "ruleData": {"expression": "guest.sessions[0].interactions.length > 0"}}], sandbox=sandbox
    )
    assert legacy.needs == {"sessions"}
    assert legacy.evaluate(customer_ctx()).passed is True


def test_compile_rules_combines_with_and(sandbox: JsSandbox) -> None:
    rules = [
        {"id": "c-1", "ruleData": {"expression": "(function () { return guest.guestType === 'customer'; })();"}},
        {"id": "c-2", "ruleData": {"expression": "({segment: 'vip'})"}},
    ]
    audience = compile_rules(rules, sandbox=sandbox)
    result = audience.evaluate(customer_ctx())
    assert result.passed is True and result.filter == {"segment": "vip"} and set(result.filters) == {"c-1", "c-2"}
    assert audience.evaluate(anonymous_ctx()).passed is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"combinator": "XOR", "conditions": []}, "combinator must be AND or OR"),
        ({"conditions": [{"template": "nope"}]}, "unknown condition template 'nope'"),
        ({"conditions": [{"template": "guest_type", "params": {"type": "robot"}}]}, "guest_type: parameter 'type'"),
        ({"conditions": [{"script": "(function () {"}]}, "SyntaxError"),
        ({"conditions": [{"script": "[[n | number | | {required: true}]] > 1"}]}, "'n': a value is required"),
        ({"conditions": [{"script": "[[n | number]] > 1", "params": {"n": "many"}}]}, "must be a number"),
        ({"conditions": [{"conditions": [{"conditions": [CUSTOMER]}]}]}, "nested one level only"),
        ({"conditions": [{"weird": 1}]}, "expected template, script, not or a group"),
        ({"segments": {"mode": "SOME", "refs": ["a"]}}, "mode must be ANY, ALL or NONE"),
        ({"conditions": "x"}, "conditions must be a list"),
    ],
)
def test_invalid_audiences_are_rejected(sandbox: JsSandbox, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_audience(raw, sandbox=sandbox)
    assert message in str(info.value)


def test_invalid_rules_are_rejected(sandbox: JsSandbox) -> None:
    with pytest.raises(ConditionError, match="rules\\[0\\]"):
        compile_rules([{"id": "c-1", "ruleData": {"expression": "return ("}}], sandbox=sandbox)
    with pytest.raises(ConditionError, match="expected"):
        compile_rules([{"id": "c-1"}], sandbox=sandbox)

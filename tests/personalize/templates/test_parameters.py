"""Template parameters [[ … ]] (§5.3): declarations, reuse by label, substitution and validation."""

from __future__ import annotations

from typing import Any

import pytest

from innkeeper.personalize.templates.parameters import Parameter, ParameterError, declarations, substitute

BANNER = """<div class="[[Layout | enum(wide, narrow) | wide | { group: "Style", order: 2 }]]"
     style="color: [[Text colour | colour | #333333]]">
  <h1>[[Title | string | Hello | { required: true, max: 20, placeholder: 'Your title' }]]</h1>
  <p>[[ Title ]] — [[Body | text]]</p>
  <a href="[[Link | url | /sale]]">[[Discount | number | 10 | { min: 0, max: 90 }]]%</a>
</div>"""


def test_declarations_in_order_with_types_defaults_and_options() -> None:
    assert declarations(BANNER) == [
        Parameter("Layout", "enum", "wide", {"group": "Style", "order": 2}, ("wide", "narrow")),
        Parameter("Text colour", "colour", "#333333", {}),
        Parameter("Title", "string", "Hello", {"required": True, "max": 20, "placeholder": "Your title"}),
        Parameter("Body", "text", None, {}),
        Parameter("Link", "url", "/sale", {}),
        Parameter("Discount", "number", "10", {"min": 0, "max": 90}),
    ]


def test_types_and_option_keys_are_case_insensitive_and_extras_are_kept() -> None:
    [parameter] = declarations("[[ Flag | Boolean | true | { Required: TRUE, Help: 'tick it', weight: 1.5 } ]]")
    assert parameter.type == "boolean"
    assert parameter.options == {"required": True, "help": "tick it", "weight": 1.5}
    assert parameter.required


def test_substitute_uses_values_defaults_and_reuses_labels() -> None:
    out = substitute(BANNER, {"Title": "Big sale", "Body": "All shoes", "Discount": 25, "Unknown": "ignored"})
    assert 'class="wide"' in out and "color: #333333" in out
    assert "<h1>Big sale</h1>" in out and "<p>Big sale — All shoes</p>" in out
    assert 'href="/sale">25%' in out
    assert "[[" not in out


def test_strings_are_inserted_raw() -> None:
    assert substitute('var t = "[[T | string]]";', {"T": 'say "hi"'}) == 'var t = "say "hi"";'


def test_optional_parameter_without_value_or_default_is_empty() -> None:
    assert substitute("<p>[[Body | text]]</p>", {}) == "<p></p>"


def test_required_without_value_is_an_error_naming_the_label() -> None:
    with pytest.raises(ParameterError, match="'Days': a value is required") as info:
        substitute("var d = [[Days | number | | { required: true }]];", {})
    assert info.value.label == "Days"
    assert substitute("var d = [[Days | number | | { required: true }]];", {"Days": "7"}) == "var d = 7;"


@pytest.mark.parametrize(
    ("declaration", "value", "inserted"),
    [
        ("[[N | number]]", 3, "3"),
        ("[[N | number]]", 2.5, "2.5"),
        ("[[N | number]]", "-1e3", "-1e3"),
        ("[[E | enum(has, has not)]]", "HAS NOT", "has not"),
        ("[[B | boolean]]", True, "true"),
        ("[[B | boolean]]", "False", "false"),
        ("[[C | colour]]", "#ff00aa", "#ff00aa"),
        ("[[C | color]]", "rgba(0, 0, 0, 0.5)", "rgba(0, 0, 0, 0.5)"),
        ("[[U | url]]", "https://example.com/a?b=c", "https://example.com/a?b=c"),
        ("[[I | image]]", "/img/banner.png", "/img/banner.png"),
        ("[[H | html]]", "<b>bold</b>", "<b>bold</b>"),
        ("[[D | date]]", "2025-05-14", "2025-05-14"),
        ("[[D | date]]", "2025-05-14T09:30:00Z", "2025-05-14T09:30:00Z"),
    ],
)
def test_valid_values_per_type(declaration: str, value: Any, inserted: str) -> None:
    assert substitute(declaration, {declaration[2]: value}) == inserted


@pytest.mark.parametrize(
    ("declaration", "value", "message"),
    [
        ("[[N | number]]", "ten", "'N': the value must be a number"),
        ("[[N | number]]", True, "must be a number"),
        ("[[N | number | | { min: 1, max: 5 }]]", 0, "must be at least 1"),
        ("[[N | number | | { min: 1, max: 5 }]]", "6", "must be at most 5"),
        ("[[E | enum(a, b)]]", "c", "must be one of a, b"),
        ("[[B | boolean]]", "yes", "must be true or false"),
        ("[[C | colour]]", "#12345", "must be a colour"),
        ("[[U | url]]", "javascript:alert(1)", "must be an http\\(s\\) URL or a path"),
        ("[[D | date]]", "14/05/2025", "must be an ISO date"),
        ("[[S | string | | { max: 3 }]]", "four", "length must be at most 3"),
    ],
)
def test_invalid_values_per_type(declaration: str, value: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        substitute(declaration, {declaration[2]: value})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("[[X | widget]]", "unknown type 'widget'"),
        ("[[X | enum()]]", "enum\\(\\) needs at least one value"),
        ("[[X | number | abc]]", "the default must be a number"),
        ("[[X | string | a | { required true }]]", "options object cannot be parsed"),
        ("[[ | string]]", "the label is empty"),
    ],
)
def test_invalid_declarations(source: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        declarations(source)


def test_undeclared_label_is_an_error_but_js_nested_arrays_are_left_alone() -> None:
    with pytest.raises(ParameterError, match="'Titel': used but never declared"):
        substitute("[[Title | string | a]] [[ Titel ]]", {})
    assert substitute("var x = [[N | number | 1]]; var m = [[1, 2]];", {}) == "var x = 1; var m = [[1, 2]];"


def test_first_declaration_wins() -> None:
    source = "[[A | number | 1]] [[A | string | zzz]]"
    assert [p.type for p in declarations(source)] == ["number"]
    assert substitute(source, {}) == "1 1"

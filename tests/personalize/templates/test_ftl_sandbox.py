"""Sandbox limits and error reporting of FTL-lite: every failure is a TemplateError with a line and a column."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from innkeeper.personalize.templates.ftl import (
    FtlFunction,
    Limits,
    TemplateLimitError,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
)

NOW = datetime(2025, 5, 14, 9, 30, tzinfo=UTC)


def render(source: str, model: dict[str, Any] | None = None, limits: Limits | None = None) -> str:
    return compile_template(source).render(model or {}, now=NOW, limits=limits)


def test_limits_defaults_follow_the_contract() -> None:
    assert Limits() == Limits(max_output_chars=1_048_576, max_loop_iterations=100_000, max_nesting=64, max_seconds=0.05)


def test_runaway_loop_stops_quickly_without_allocating_the_range() -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError) as info:
        render("<#list 1..100000000 as i>${i}</#list>", limits=Limits(max_output_chars=10**9, max_seconds=5))
    assert time.perf_counter() - started < 2
    assert "loop iterations" in info.value.message
    assert (info.value.line, info.value.column) == (1, 1)


def test_loop_iterations_count_across_the_whole_render() -> None:
    src = "<#list 1..6 as i><#list 1..6 as j>.</#list></#list>"
    assert render(src, limits=Limits(max_loop_iterations=42)) == "." * 36
    with pytest.raises(TemplateLimitError):
        render(src, limits=Limits(max_loop_iterations=41))


def test_unbounded_range_is_stopped_by_the_iteration_limit() -> None:
    with pytest.raises(TemplateLimitError):
        render("<#list 0.. as i></#list>", limits=Limits(max_loop_iterations=1000))


def test_huge_output_is_refused() -> None:
    with pytest.raises(TemplateLimitError) as info:
        render("<#list 1..1000 as i>0123456789</#list>", limits=Limits(max_output_chars=5_000))
    assert "Output exceeds" in info.value.message


def test_string_doubling_is_bounded_by_the_output_limit() -> None:
    src = '<#assign s = "x"><#list 1..64 as i><#assign s = s + s></#list>'
    with pytest.raises(TemplateLimitError):
        render(src, limits=Limits(max_output_chars=1_000_000))


def test_materializing_a_huge_range_is_refused() -> None:
    with pytest.raises(TemplateLimitError):
        render('${(1..100000000)?join(",")}')


def test_recursive_macro_hits_the_nesting_limit() -> None:
    with pytest.raises(TemplateLimitError) as info:
        render("<#macro m><@m/></#macro>\n<@m/>")
    assert "Nesting" in info.value.message


def test_recursive_function_hits_the_nesting_limit() -> None:
    with pytest.raises(TemplateLimitError):
        render("<#function f n><#return f(n + 1)></#function>${f(0)}")


def test_deep_directive_nesting_is_limited_at_render_time() -> None:
    src = "<#if true>" * 70 + "x" + "</#if>" * 70
    with pytest.raises(TemplateLimitError):
        render(src)
    assert render(src, limits=Limits(max_nesting=80)) == "x"


def test_wall_clock_limit() -> None:
    def slow() -> int:
        time.sleep(0.002)
        return 1

    with pytest.raises(TemplateLimitError) as info:
        render("<#list 1..1000 as i>${f()}</#list>", {"f": FtlFunction(slow)}, limits=Limits(max_seconds=0.02))
    assert "longer than" in info.value.message


def test_limit_errors_are_not_swallowed_by_attempt() -> None:
    with pytest.raises(TemplateLimitError):
        render(
            "<#attempt><#list 1.. as i></#list><#recover>recovered</#attempt>", limits=Limits(max_loop_iterations=10)
        )


def test_template_size_limit() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template("x" * (256 * 1024 + 1))
    assert "256 KiB" in info.value.message
    compile_template("x" * (256 * 1024))


def test_deeply_nested_expression_is_a_syntax_error_not_recursion_error() -> None:
    with pytest.raises(TemplateSyntaxError):
        compile_template("${" + "(" * 5000 + "1" + ")" * 5000 + "}")
    with pytest.raises(TemplateSyntaxError):
        compile_template("${" + "!" * 5000 + "true}")
    with pytest.raises(TemplateSyntaxError):
        compile_template("${" + "[" * 5000 + "]" * 5000 + "}")


def test_deeply_nested_directives_are_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError):
        compile_template("<#if true>" * 5000 + "</#if>" * 5000)


def test_missing_value_error_has_line_and_column() -> None:
    src = '{\n  "name": "${guest.firstNam}"\n}'
    with pytest.raises(TemplateRenderError) as info:
        render(src, {"guest": {"firstName": "Jane"}})
    err = info.value
    assert (err.line, err.column) == (2, 14)
    assert "==> guest.firstNam" in err.message
    assert str(err).endswith('[in template "template" at line 2, column 14]')


def test_missing_parent_is_reported_even_with_default_on_the_last_step() -> None:
    # product.color!"red" only protects the last step; a missing product is still an error.
    with pytest.raises(TemplateRenderError) as info:
        render('${product.color!"red"}')
    assert "==> product" in info.value.message


def test_boolean_interpolation_is_an_error() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render("a\n ${flag}", {"flag": True})
    assert (info.value.line, info.value.column) == (2, 4)


def test_comparing_mismatched_types_is_an_error() -> None:
    with pytest.raises(TemplateRenderError):
        render('<#if n == "1">x</#if>', {"n": 1})
    with pytest.raises(TemplateRenderError):
        render('<#if "a" < "b">x</#if>')


def test_non_boolean_condition_is_an_error() -> None:
    with pytest.raises(TemplateRenderError):
        render('<#if "yes">x</#if>')


@pytest.mark.parametrize(
    "source",
    [
        '<#include "other.ftl">',
        '<#import "lib.ftl" as lib>',
        '<#setting locale="de_DE">',
        '${"1+1"?eval}',
        '${"${x}"?interpret}',
        '<#assign o = "freemarker.template.utility.Execute"?new()>',
        "${x?api}",
    ],
)
def test_forbidden_constructs_are_rejected_at_compile_time(source: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template(source)
    assert "not allowed" in info.value.message


def test_python_callables_are_not_callable_without_ftlfunction() -> None:
    with pytest.raises(TemplateRenderError):
        render("${f()}", {"f": lambda: "pwned"})


def test_no_attribute_access_to_python_objects() -> None:
    with pytest.raises(TemplateRenderError):
        render("${s.upper}", {"s": "abc"})
    with pytest.raises(TemplateRenderError):
        render("${o.__class__}", {"o": object()})


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("<#if x>", 1, 1),
        ("ok\n<#list xs as>", 2, 13),
        ("${1 +}", 1, 6),
        ("a\n\n  ${'unterminated}", 3, 5),
        ("<#bogus>", 1, 1),
        ("${x?nosuchbuiltin}", 1, 5),
        ("</#if>", 1, 1),
        ("<#break>", 1, 1),
    ],
)
def test_syntax_errors_have_line_and_column(source: str, line: int, column: int) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template(source)
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"line {line}, column {column}: ")


def test_function_failure_is_a_render_error() -> None:
    def boom() -> None:
        raise ValueError("nope")

    with pytest.raises(TemplateRenderError) as info:
        render("${f()}", {"f": FtlFunction(boom)})
    assert "ValueError" in info.value.message

"""Property tests (Hypothesis) and reuse of compiled templates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from innkeeper.personalize.templates.ftl import FtlFunction, compile_template

NOW = datetime(2025, 5, 14, 9, 30, tzinfo=UTC)
# Text without FTL syntax: no "$", "#" or "<" characters, so nothing can start an interpolation or a tag.
PLAIN_TEXT = st.text(alphabet=st.characters(blacklist_characters="$#<", blacklist_categories=["Cs"]))


@given(PLAIN_TEXT)
def test_text_without_ftl_syntax_renders_to_itself(text: str) -> None:
    assert compile_template(text).render({}, now=NOW) == text


@given(st.integers())
def test_c_of_integers_round_trips(n: int) -> None:
    assert int(compile_template("${n?c}").render({"n": n}, now=NOW)) == n


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_default_number_format_groups_integers(n: int) -> None:
    assert compile_template("${n}").render({"n": n}, now=NOW) == f"{n:,}"


@given(st.text())
def test_string_values_are_output_verbatim(s: str) -> None:
    assert compile_template("[${s}]").render({"s": s}, now=NOW) == f"[{s}]"


@given(st.text())
def test_json_string_output_is_a_valid_json_string_body(s: str) -> None:
    import json

    out = compile_template('"${s?json_string}"').render({"s": s}, now=NOW)
    assert json.loads(out) == s


@given(st.lists(st.integers(), max_size=20))
def test_list_with_sep_matches_join(xs: list[int]) -> None:
    out = compile_template("<#list xs as x>${x?c}<#sep>,</#sep></#list>").render({"xs": xs}, now=NOW)
    assert out == ",".join(str(x) for x in xs)


def test_compiled_template_is_reusable_across_models() -> None:
    tpl = compile_template('<#assign greeting = "Hi " + name>${greeting}<#list items as i>,${i}</#list>')
    assert tpl.render({"name": "A", "items": [1, 2]}, now=NOW) == "Hi A,1,2"
    assert tpl.render({"name": "B", "items": []}, now=NOW) == "Hi B"
    # assignments of one render never leak into the next
    again = compile_template("${(greeting)!'none'}<#assign greeting = 'set'>")
    assert again.render({}, now=NOW) == "none"
    assert again.render({}, now=NOW) == "none"


def test_compiled_template_is_thread_safe() -> None:
    tpl = compile_template("<#list 1..50 as i><#assign acc = (acc!0) + i></#list>${who}:${acc}")
    results: dict[int, str] = {}

    def work(k: int) -> None:
        results[k] = tpl.render({"who": str(k)}, now=NOW)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: f"{k}:1,275" for k in range(8)}


def test_functions_see_each_renders_own_model() -> None:
    tpl = compile_template('${f("x")}')
    assert tpl.render({"f": FtlFunction(lambda v: v + "1")}, now=NOW) == "x1"
    assert tpl.render({"f": FtlFunction(lambda v: v + "2")}, now=NOW) == "x2"

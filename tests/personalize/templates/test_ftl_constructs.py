"""One case per construct and built-in of the FTL-lite scope table (Personalize contract §5.6).

Expected outputs follow FreeMarker 2.3 semantics: en_US number format `#,##0.###` with HALF_EVEN rounding,
`?c` computer format, BigDecimal arithmetic (division keeps 12 fraction digits), white-space stripping of lines
that hold only FTL tags, and strict missing-value handling.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from innkeeper.personalize.templates.ftl import FtlFunction, TemplateRenderError, compile_template

NOW = datetime(2025, 5, 14, 9, 30, 5, 123000, tzinfo=UTC)
MODEL: dict[str, Any] = {
    "guest": {
        "firstName": "Jane",
        "lastName": "Doe",
        "guestType": "customer",
        "email": "jane@example.com",
        "orders": [{"referenceId": "ORD-1", "price": 120.0}, {"referenceId": "ORD-2", "price": 60.5}],
        "sessions": [],
        "firstSeen": datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
        "tags": ["a", "b", "c"],
        "vip": True,
        "score": 7,
    },
    "offers": [{"ref": "o1", "name": "Potatoes", "attributes": {"name": "Mars Grown Potatoes"}}],
    "h": {"x": 1, "y": 2},
    "n": 1234567.891,
    "dec": Decimal("1234.5678"),
    "empty": "",
    "nothing": None,
    "day": date(2025, 5, 1),
}


def render(source: str, model: dict[str, Any] | None = None, **kw: Any) -> str:
    return compile_template(source).render(MODEL if model is None else model, now=NOW, **kw)


CONSTRUCTS = [
    # ${expr}, text passthrough, comments
    ("plain text", "Hello", "Hello"),
    ("interpolation", "Hi ${guest.firstName}!", "Hi Jane!"),
    ("comment", "a<#-- ignored ${nope} -->b", "ab"),
    # if / elseif / else
    ("if true", "<#if guest.vip>VIP</#if>", "VIP"),
    ("elseif", "<#if guest.score gt 9>A<#elseif guest.score gte 7>B<#else>C</#if>", "B"),
    ("else", '<#if guest.guestType == "visitor">V<#else>C</#if>', "C"),
    ("if with parenthesized >", "<#if (guest.score > 5)>big</#if>", "big"),
    # list
    ("list seq", "<#list guest.tags as t>${t}</#list>", "abc"),
    ("list sep", "<#list guest.tags as t>${t}<#sep>, </#sep></#list>", "a, b, c"),
    ("list sep unclosed", "<#list guest.tags as t>${t}<#sep>; </#list>", "a; b; c"),
    ("list else", "<#list guest.sessions as s>${s}<#else>none</#list>", "none"),
    ("list hash keys", "<#list h?keys as k>${k}</#list>", "xy"),
    ("list hash key value", "<#list h as k, v>${k}=${v}<#sep>&</#list>", "x=1&y=2"),
    ("items", "<#list guest.tags>[<#items as t>${t}</#items>]<#else>-</#list>", "[abc]"),
    ("loop index counter", "<#list guest.tags as t>${t?index}${t?counter}</#list>", "011223"),
    ("has_next", "<#list guest.tags as t>${t?has_next?c} </#list>", "true true false "),
    (
        "is_first is_last",
        "<#list guest.tags as t>${t?is_first?c}/${t?is_last?c} </#list>",
        "true/false false/false false/true ",
    ),
    ("item_parity", "<#list guest.tags as t>${t?item_parity}</#list>", "oddevenodd"),
    ("legacy _index _has_next", "<#list guest.tags as t>${t_index}<#if t_has_next>,</#if></#list>", "0,1,2"),
    ("break", "<#list 1..10 as i>${i}<#if i == 3><#break></#if></#list>", "123"),
    ("continue", "<#list 1..5 as i><#if i % 2 == 0><#continue></#if>${i}</#list>", "135"),
    # assign (several at once), compound assignment, capture
    ("assign", "<#assign a = 1 b = a + 1>${a}${b}", "12"),
    ("assign with commas", "<#assign a = 1, b = 2>${a + b}", "3"),
    ("assign +=", '<#assign s = "a"><#assign s += "b">${s}', "ab"),
    ("assign ++", "<#assign i = 1><#assign i++>${i}", "2"),
    ("assign capture", "<#assign greeting>Hi ${guest.firstName}</#assign>[${greeting}]", "[Hi Jane]"),
    ("assign shadows data model", '<#assign guest = "x">${guest}', "x"),
    # literals
    ("string escapes", r'${"a\"b\\c\n"}', 'a"b\\c\n'),
    ("single quotes", """${'it\\'s "q"'}""", 'it\'s "q"'),
    ("string interpolation", '${"Hi ${guest.firstName}, ${guest.score}"}', "Hi Jane, 7"),
    ("raw string", r'${r"C:\temp\${x}"}', r"C:\temp\${x}"),
    ("numbers", "${1 + 2 * 3 - 4 / 2}", "5"),
    ("booleans", "${true?c} ${false?c}", "true false"),
    ("sequence literal", '${["a", "b"]?join("+")}', "a+b"),
    ("hash literal", '<#assign p = {"name": "x", "n": 2}>${p.name}${p["n"]}', "x2"),
    # access, arithmetic, comparison, logic
    ("dot and brackets", '${guest["firstName"]} ${guest.orders[1].referenceId}', "Jane ORD-2"),
    ("modulo", "${7 % 3} ${-7 % 3}", "1 -1"),
    ("bigdecimal addition", "${(0.1 + 0.2)?c}", "0.3"),
    ("division scale", "${(10 / 4)?c} ${(1 / 3)?c}", "2.5 0.333333333333"),
    (
        "comparison operators",
        "${(1 < 2)?c}${(2 <= 2)?c}${(3 > 2)?c}${(3 >= 4)?c}${(1 != 1)?c}",
        "truetruetruefalsefalse",
    ),
    ("lt lte gt gte", "<#if 1 lt 2 && 2 lte 2 && 3 gt 2 && 3 gte 3>ok</#if>", "ok"),
    ("string equality", '<#if guest.guestType == "customer">yes</#if>', "yes"),
    ("single = is equality", '<#if guest.guestType = "customer">yes</#if>', "yes"),
    ("and or not", "${(true && !false)?c} ${(false || false)?c}", "true false"),
    ("short circuit &&", "${(false && nope)?c}", "false"),
    ("short circuit ||", "${(true || nope.deeper)?c}", "true"),
    ("unary minus", "${-guest.score}", "-7"),
    # ranges and slicing
    ("range inclusive", "<#list 0..3 as i>${i}</#list>", "0123"),
    ("range exclusive", "<#list 0..<3 as i>${i}</#list>", "012"),
    ("range descending", "<#list 3..1 as i>${i}</#list>", "321"),
    ("range length", "<#list 5..*3 as i>${i}</#list>", "567"),
    ("right unbounded", "<#list 1.. as i>${i}<#if i == 3><#break></#if></#list>", "123"),
    ("string slice", '${"abcdef"[0..2]} ${"abcdef"[3..]} ${"abcdef"[1..<3]}', "abc def bc"),
    ("sequence slice", '${guest.tags[1..]?join("")}', "bc"),
    ("range size", "${(1..10)?size}", "10"),
    # + concatenation
    ("string + number", '${"n=" + 1234}', "n=1,234"),
    ("sequence +", '${(["a"] + ["b"])?join(",")}', "a,b"),
    ("hash +", '<#assign m = {"a": 1} + {"b": 2, "a": 3}>${m.a}${m.b}', "32"),
    # missing values
    ("?? present", "${guest.firstName???c}", "true"),
    ("?? missing", "${guest.middleName???c}", "false"),
    ("?? null value", "${nothing???c}", "false"),
    ("?? out of range index", "<#if guest.orders[5]??>x<#else>none</#if>", "none"),
    ("(a.b.c)??", "${(nope.deeper.still)???c}", "false"),
    ("! default", '${guest.middleName!"-"}', "-"),
    ("! default present", '${guest.firstName!"-"}', "Jane"),
    ("(a.b)!default", '${(nope.deeper)!"fallback"}', "fallback"),
    ("! without default", "[${guest.middleName!}]", "[]"),
    ("! low precedence right side", "${nope!1 + 2}", "3"),
    ("! empty lists as empty", "<#list nope! as x>${x}<#else>empty</#list>", "empty"),
    # functions
    ("toJSON", "${toJSON(offers)}", '[{"ref":"o1","name":"Potatoes","attributes":{"name":"Mars Grown Potatoes"}}]'),
    ("toJSON date", "${toJSON({'d': guest.firstSeen})}", '{"d":"2025-01-02T10:00:00.000Z"}'),
    ("toJSON scalars", '${toJSON([1, 2.5, true, "x", nothing!"n"])}', '[1,2.5,true,"x","n"]'),
    (".now", "${.now}", "2025-05-14T09:30:05.123Z"),
    (".vars", '${.vars["guest"].firstName}', "Jane"),
    # white-space stripping
    (
        "strip tag-only lines",
        "<#list guest.tags as t>\n  <#if t != 'b'>\n  - ${t}\n  </#if>\n</#list>\n",
        "  - a\n  - c\n",
    ),
    ("comment-only line stripped", "a\n  <#-- c -->\nb", "a\nb"),
    ("interpolation line not stripped", "  ${guest.score}\n", "  7\n"),
    ("tag plus text not stripped", "  <#if true>x</#if>\n", "  x\n"),
    ("two tags separated by space not stripped", "<#if true> <#if true>\n</#if></#if>", " \n"),
    ("multi-line tag", '<#assign m = {\n  "a": 1\n}>\n${m.a}', "1"),
]


@pytest.mark.parametrize(("source", "expected"), [pytest.param(s, e, id=i) for i, s, e in CONSTRUCTS])
def test_construct(source: str, expected: str) -> None:
    assert render(source) == expected


NUMBER_FORMAT = [
    ("${1234567.891}", "1,234,567.891"),
    ("${0.5}", "0.5"),
    ("${1234.5678}", "1,234.568"),
    ("${n}", "1,234,567.891"),
    ("${dec}", "1,234.568"),
    ("${1.0005}", "1"),  # the double 1.0005 is just below the tie; Java (8+) rounds it down
    ("${0.125}", "0.125"),
    ("${0.0625}", "0.062"),  # exact tie -> HALF_EVEN
    ("${-1234.5}", "-1,234.5"),
    ("${guest.orders[0].price}", "120"),
    ("${1000000}", "1,000,000"),
    ("${10 / 3}", "3.333"),
]


@pytest.mark.parametrize(("source", "expected"), NUMBER_FORMAT)
def test_default_number_format_is_en_us(source: str, expected: str) -> None:
    assert render(source) == expected


def test_computer_number_format_setting() -> None:
    assert render("${1234567.891} ${1000}", number_format="computer") == "1234567.891 1000"


BUILTINS = [
    ("${guest.tags?size} ${h?size}", "3 2"),
    (
        "${guest.firstName?has_content?c} ${empty?has_content?c} ${nope?has_content?c} ${guest.sessions?has_content?c}",
        "true false false false",
    ),
    ("<#list h?values as v>${v}</#list>", "12"),
    ("${guest.tags?first}${guest.tags?last}", "ac"),
    ('${guest.tags?seq_contains("b")?c} ${guest.tags?seq_contains("z")?c}', "true false"),
    ('${guest.tags?join(", ")}', "a, b, c"),
    ("${guest.score?string} ${n?string}", "7 1,234,567.891"),
    ('${n?string("0.00")} ${0.5?string("#.##")} ${1234?string("#,##0.00")}', "1234567.89 .5 1,234.00"),
    ('${guest.vip?string("yes", "no")} ${false?string("yes", "no")}', "yes no"),
    ("${n?c} ${1000000?c} ${guest.vip?c} ${0.1?c}", "1234567.891 1000000 true 0.1"),
    ('${"12.5"?number + 1}', "13.5"),
    ("${.now?long?c}", "1747215005123"),
    ("${1.5?round} ${2.5?round} ${(-1.5)?round} ${1.4?round}", "2 3 -1 1"),
    ("${-1.5?round}", "-2"),  # ?round binds tighter than unary minus: -(1.5?round)
    ("${1.7?floor} ${(-1.2)?floor}", "1 -2"),
    ("${1.2?ceiling} ${(-1.7)?ceiling}", "2 -1"),
    ("${(-5)?abs} ${(-2.5)?abs}", "5 2.5"),
    ('${"a-b-c"?replace("-", "+")}', "a+b+c"),
    ('${"a1b22c"?replace("[0-9]+", "#", "r")}', "a#b#c"),
    ('${"Hello"?upper_case} ${"Hello"?lower_case}', "HELLO hello"),
    ('${"  green mouse"?cap_first}|', "  Green mouse|"),
    ('${"  x y  "?trim}|', "x y|"),
    ('${"hello"?length}', "5"),
    ('${"hello"?contains("ell")?c} ${"hello"?starts_with("he")?c} ${"hello"?ends_with("lo")?c}', "true true true"),
    ('${"hello"?index_of("l")} ${"hello"?index_of("z")}', "2 -1"),
    ('${"hello"?substring(1, 3)} ${"hello"[1..3]}', "el ell"),
    ('<#list "a,b,,c"?split(",") as p>[${p}]</#list>', "[a][b][][c]"),
    ('${"2025-06-01"?date("yyyy-MM-dd")}', "2025-06-01"),
    ('${"2025-06-01T10:30"?datetime("yyyy-MM-dd\'T\'HH:mm")}', "2025-06-01T10:30:00.000Z"),
    ("${guest.firstSeen?datetime} ${guest.firstSeen?date}", "2025-01-02T10:00:00.000Z 2025-01-02"),
    ("${.now?iso_utc} ${guest.firstSeen?iso_utc}", "2025-05-14T09:30:05.123Z 2025-01-02T10:00:00Z"),
    ('${"say \\"hi\\"\\n</script>"?json_string}', 'say \\"hi\\"\\n<\\/script>'),
    ('${"it\'s \\"x\\""?js_string}', 'it\\\'s \\"x\\"'),
    ('${"<a href=\\"x\\">&</a>"?html}', "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"),
    ('${"a b/ä&"?url}', "a%20b%2F%C3%A4%26"),
    (
        '${"s"?is_string?c}${1?is_number?c}${h?is_hash?c}${guest.tags?is_sequence?c}${true?is_boolean?c}',
        "truetruetruetruetrue",
    ),
    (
        '${1?is_string?c}${"1"?is_number?c}${guest.tags?is_hash?c}${h?is_sequence?c}${1?is_boolean?c}',
        "falsefalsefalsefalsefalse",
    ),
    ("${day?is_date?c}", "true"),
]


@pytest.mark.parametrize(("source", "expected"), BUILTINS)
def test_builtin(source: str, expected: str) -> None:
    assert render(source) == expected


DATE_PATTERNS = [
    ("yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2025-05-14T09:30:05.123+0000"),
    ("dd-MMM-yy", "14-May-25"),
    ("EEE, d MMMM yyyy", "Wed, 14 May 2025"),
    ("EEEE h:mm a", "Wednesday 9:30 AM"),
    ("HH 'o''clock' z", "09 o'clock UTC"),
    ("yyyy-MM-dd'T'HH:mm:ssXXX", "2025-05-14T09:30:05Z"),
    ("S", "123"),
]


@pytest.mark.parametrize(("pattern", "expected"), DATE_PATTERNS)
def test_simple_date_format_patterns(pattern: str, expected: str) -> None:
    assert compile_template("${.now?string(p)}").render({"p": pattern}, now=NOW) == expected


def test_date_parse_with_offset_converts_to_utc() -> None:
    src = '${"2025-06-01 10:30 +0200"?datetime("yyyy-MM-dd HH:mm Z")?string("HH:mm")}'
    assert render(src) == "08:30"


def test_model_function_and_missing_result() -> None:
    nodes = {"GetGuestType": {"outputs": [{"guestType": "CUSTOMER"}]}}
    model = {"getDecisionModelResultNode": FtlFunction(nodes.get)}
    src = (
        '${getDecisionModelResultNode("GetGuestType").outputs[0].guestType}'
        '<#if getDecisionModelResultNode("x")??>!<#else>?</#if>'
    )
    assert render(src, model) == "CUSTOMER?"


def test_to_json_is_available_even_if_model_defines_other_functions() -> None:
    model = {"f": FtlFunction(lambda: {"a": [1, "b"]})}
    assert render("${toJSON(f())}", model) == '{"a":[1,"b"]}'


P1 = [
    ("function", "<#function twice x><#return x * 2></#function>${twice(21)}", "42"),
    ("function default param", "<#function f a b=10><#return a + b></#function>${f(1)} ${f(1, 2)}", "11 3"),
    (
        "recursive function",
        "<#function fact n><#if n lte 1><#return 1></#if><#return n * fact(n - 1)></#function>${fact(5)}",
        "120",
    ),
    ("macro", '<#macro greet name>Hi ${name}!</#macro><@greet name="Jo"/>', "Hi Jo!"),
    ("macro positional", "<#macro pair a b>${a}-${b}</#macro><@pair 1 2/>", "1-2"),
    ("macro nested", "<#macro wrap>[<#nested>]</#macro><@wrap>x</@wrap>", "[x]"),
    (
        "macro nested loop var",
        "<#macro rep n><#list 1..n as i><#nested i></#list></#macro><@rep 3; k>${k}</@rep>",
        "123",
    ),
    ("macro defined after use", "<@later/><#macro later>L</#macro>", "L"),
    ("local", "<#assign x = 1><#macro m><#local x = 2>${x}</#macro><@m/>${x}", "21"),
    ("global", "<#global g = 5>${g}", "5"),
    (
        "switch",
        '<#switch guest.guestType><#case "visitor">V<#break><#case "customer">C<#break><#default>D</#switch>',
        "C",
    ),
    ("switch fall-through", "<#switch 1><#case 1>a<#case 2>b<#break><#case 3>c</#switch>", "ab"),
    ("switch default", '<#switch "z"><#case "a">a<#break><#default>d</#switch>', "d"),
    ("attempt ok", "<#attempt>fine<#recover>bad</#attempt>", "fine"),
    ("attempt recover discards partial output", "<#attempt>partial ${nope}<#recover>recovered</#attempt>", "recovered"),
    ("compress", "<#compress>\n  a  \t b\n\n\n  c  \n</#compress>", "a b\nc"),
    ("then", '${guest.vip?then("Y", "N")}', "Y"),
    ("switch built-in", '${guest.score?switch(1, "one", 7, "seven", "other")}', "seven"),
    ("lambda filter map", '${[1, 2, 3, 4]?filter(x -> x % 2 == 0)?map(x -> x * 10)?join(",")}', "20,40"),
    ("sort_by", '<#list [{"n": "b"}, {"n": "a"}]?sort_by("n") as e>${e.n}</#list>', "ab"),
]


@pytest.mark.parametrize(("source", "expected"), [pytest.param(s, e, id=i) for i, s, e in P1])
def test_p1_construct(source: str, expected: str) -> None:
    assert render(source) == expected


def test_function_output_is_discarded() -> None:
    assert render("<#function f>ignored<#return 1></#function>${f()}") == "1"


def test_uncaught_error_in_attempt_body_is_a_render_error_outside_attempt() -> None:
    with pytest.raises(TemplateRenderError):
        render("${nope}")

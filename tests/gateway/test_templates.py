"""The mapping-template engine: the documented VTL subset, and fuzzed templates."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.gateway.template_values import UTIL, Input
from stackyard.gateway.templates import MAX_ITERATIONS, Template, TemplateSyntaxError
from stackyard.gateway.transform import Headers

PARAMS: dict[str, Any] = {
    "path": {"id": "7"},
    "querystring": {"q": "red", "id": "shadowed"},
    "header": Headers({"x-token": "t0k"}),
}
BODY = b'{"a": {"b": [1, 2, {"c": "deep"}], "s": "x\\"y", "t": true, "n": null}, "list": []}'


def roots(body: bytes = BODY) -> dict[str, Any]:
    return {
        "input": Input(body, PARAMS),
        "context": {"requestId": "r1", "stage": "dev", "authorizer": {"claims": {"sub": "u1"}}},
        "stageVariables": {"region": "eu"},
        "util": UTIL,
        "request": PARAMS,
    }


def render(source: str, body: bytes = BODY) -> str:
    return Template(source).render(roots(body))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("plain text, no references", "plain text, no references"),
        ("$context.requestId/$context.stage", "r1/dev"),
        ("${context.stage}-x $!context.stage", "dev-x dev"),
        ("$context.authorizer.claims.sub", "u1"),
        ("$stageVariables.region", "eu"),
        ("$request.header.X-Token", "t0k"),
        ("$missing $context.nothing.deeper|", " |"),
        ("$input.json('$.a.b')", '[1, 2, {"c": "deep"}]'),
        ("$input.json('$.a.b[2].c')", '"deep"'),
        ("$input.json('$[\"a\"].t')", "true"),
        ("$input.json('$.a.zzz')", ""),
        ("$input.path('$.a.b[-1].c')", "deep"),
        ("$input.path('$.a.b').size() $input.path('$.list').isEmpty()", "3 true"),
        ("$input.params('id') $input.params('q') $input.params('X-TOKEN')", "7 red t0k"),
        ("$input.params().path.id", "7"),
        ("$util.escapeJavaScript($input.path('$.a.s'))", 'x\\"y'),
        ("$util.urlEncode('a b&c') $util.urlDecode('a+b%26c')", "a+b%26c a b&c"),
        (
            "$util.base64Encode('hi') $util.base64Decode('aGk=') [$util.base64Decode('@')]",
            "aGk= hi []",
        ),
        ("$util.parseJson('{\"k\": [1]}').k.get(0)", "1"),
        ("price: $5 and #hash, \\$context.stage \\#if", "price: $5 and #hash, $context.stage #if"),
        ("a## comment\nb#* block\n*#c", "a\nbc"),
        ("#set($x = 'v')$x $x.toUpperCase() $x.length()", "v V 1"),
        ("#if($input.path('$.a.t'))yes#{else}no#end", "yes"),
        ("#if($input.path('$.a.n'))yes#elseif(1 < 2 && !false)mid#else no#end", "mid"),
        ("#if($context.stage == 'dev' || $nothing)dev#end", "dev"),
        ("#if('a' != 'b' && 2 >= 2 && 'b' > 'a')ok#end", "ok"),
        (
            "#foreach($n in $input.path('$.a.b'))$foreach.index:$n#if($foreach.hasNext),#end#end",
            '0:1,1:2,2:{"c": "deep"}',
        ),
        ("#foreach($k in $input.path('$.a').keySet())$k #end", "b s t n "),
        ("#foreach($x in [1, 'two', true])$x;#end", "1;two;true;"),
        ("#foreach($x in $nothing)never#end", ""),
        ("$input.body", BODY.decode()),
    ],
)
def test_rendering(source: str, expected: str) -> None:
    assert render(source) == expected


def test_body_that_is_not_json_renders_empty_values() -> None:
    assert render("[$input.json('$')][$input.path('$.a')][$input.body]", b"not json") == (
        "[][][not json]"
    )


def test_loops_are_bounded() -> None:
    items = list(range(MAX_ITERATIONS + 50))
    out = Template("#foreach($i in $items)x#end").render({"items": items})
    assert out == "x" * MAX_ITERATIONS
    nested = "#foreach($a in $items)#foreach($b in $items)#foreach($c in $items)y#end#end#end"
    assert len(Template(nested).render({"items": items})) <= 100_000


@pytest.mark.parametrize(
    "source",
    [
        "#if($a)never closed",
        "#end",
        "#else",
        "#foreach($x in $y)",
        "#foreach(x in $y)#end",
        "#set($x 1)",
        "${context.stage",
        "$input.json('$.a'",
        "#if($a ==)#end",
        "#if('unclosed)#end",
        "#* never closed",
        "#if(" + "(" * 200 + "true" + ")" * 200 + ")#end",
        "#if(" + "!" * 500 + "true)#end",
    ],
)
def test_syntax_errors(source: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        Template(source)


PIECES = [
    "$", "$!", "${", "}", "#", "#if(", "#elseif(", "#else", "#end", "#foreach(", " in ", "#set(",
    "=", "(", ")", "[", "]", ",", ".", "'", '"', "\\", "##", "#*", "*#", "&&", "||", "!", "==",
    "<", ">=", "$x", "$input", ".json(", ".path(", ".params(", "'$.a'", "$context", ".stage",
    "$util", ".escapeJavaScript(", "$foreach.hasNext", "true", "null", "1", "-2.5", "a", " ",
    "\n", "é",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40) | st.text(max_size=60))
def test_random_templates_raise_only_syntax_errors(parts: list[str] | str) -> None:
    source = parts if isinstance(parts, str) else "".join(parts)
    try:
        template = Template(source)
    except TemplateSyntaxError:
        return
    assert isinstance(template.render(roots()), str)
    assert isinstance(template.render({}), str)

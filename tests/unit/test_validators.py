"""Each validator with its format's own tool: YARA-X, pySigma, sqlglot, jsonschema."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from policies.types import TaskType
from policies.validators import TARGETS, CheckOptions, Constraint, asked_for, pick, validator
from policies.validators.yara import GRAMMAR
from service.schemas import ProcessRequest
from tests.fakes.rules import BROKEN_YARA, SIGMA, YARA

NONE = CheckOptions()


def test_a_yara_rule_that_compiles_passes_and_one_that_does_not_says_where() -> None:
    yara = validator("yara")
    assert yara.check(YARA, NONE).ok
    broken = yara.check(BROKEN_YARA, NONE)
    assert not broken.ok and broken.error is not None and "line 6" in broken.error


def test_a_yara_rule_cannot_make_the_router_read_its_files() -> None:
    verdict = validator("yara").check(f'include "/etc/passwd"\n{YARA}', NONE)
    assert not verdict.ok and verdict.error is not None and "root:" not in verdict.error


def test_a_sigma_rule_validates_and_converts_to_splunk_and_kusto() -> None:
    sigma = validator("sigma")
    spl = sigma.check(SIGMA, CheckOptions(target="splunk"))
    kql = sigma.check(SIGMA, CheckOptions(target="kusto"))
    assert spl.ok and kql.ok
    assert 'Image="*\\\\powershell.exe"' in spl.conversions["splunk"]
    assert kql.conversions["kusto"].startswith("DeviceProcessEvents")
    assert "ProcessCommandLine contains" in kql.conversions["kusto"]


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        (SIGMA.replace("condition: selection", "condition: selectoin"), "not defined"),
        (SIGMA.replace("endswith", "endswithh"), "Unknown modifier"),
        (SIGMA.replace("  selection:\n", "  selection: [\n"), "YAML"),
    ],
)
def test_a_broken_sigma_rule_says_why(rule: str, error: str) -> None:
    verdict = validator("sigma").check(rule, NONE)
    assert not verdict.ok and verdict.error is not None and error in verdict.error


def test_sql_is_parsed_for_syntax() -> None:
    sql = validator("sql")
    assert sql.check("SELECT host, count(*) FROM logons WHERE ok = 0 GROUP BY host", NONE).ok
    broken = sql.check("SELECT host FROM WHERE ok = 0", NONE)
    assert not broken.ok and broken.error is not None and "line 1" in broken.error


def test_json_is_checked_against_the_callers_schema() -> None:
    schema = {
        "type": "object",
        "required": ["ips"],
        "properties": {"ips": {"type": "array", "items": {"type": "string"}}},
    }
    json_check = validator("json")
    assert json_check.check('{"ips": ["198.51.100.7"]}', CheckOptions(schema=schema)).ok
    wrong = json_check.check('{"ips": [7]}', CheckOptions(schema=schema))
    assert not wrong.ok and wrong.error == "$.ips[0]: 7 is not of type 'string'"
    assert not json_check.check("{'ips': 1}", NONE).ok


def test_pick_finds_the_artifact_the_answer_holds() -> None:
    answer = f"Here is the rule:\n```yara\n{YARA}\n```\nIt matches the dropper."
    found = pick(TaskType.RULE_GENERATION, answer, NONE)
    assert found is not None and found[0].kind == "yara" and found[1] == YARA
    sigma = pick(TaskType.RULE_GENERATION, f"```yaml\n{SIGMA}```", NONE)
    assert sigma is not None and sigma[0].kind == "sigma"
    parsed = pick(TaskType.STRUCTURED_PARSING, '```json\n{"a": 1}\n```', NONE)
    assert parsed is not None and parsed[0].kind == "json" and parsed[1] == '{"a": 1}'
    assert pick(TaskType.RULE_GENERATION, "Use a KQL join on DeviceLogonEvents.", NONE) is None
    assert (
        pick(TaskType.RULE_GENERATION, "Sigma rule, please", CheckOptions(target="kusto")) is None
    )
    assert pick(TaskType.GENERAL_REASONING, YARA, NONE) is None


def test_an_unknown_kind_fails_naming_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="valid: yara, sigma, kql, sql, json"):
        validator("snort")


def test_the_sigma_targets_a_request_may_name_are_the_ones_converted_to() -> None:
    target = ProcessRequest.model_fields["target"].annotation
    assert set(get_args(get_args(target)[0])) == set(TARGETS)


R, P = TaskType.RULE_GENERATION, TaskType.STRUCTURED_PARSING


@pytest.mark.parametrize(
    ("task_type", "prompt", "kind"),
    [
        (R, "Generate a YARA rule to detect evil.dll", "yara"),
        (R, "Give me YARA for this loader: MZ, UPX0", "yara"),
        (R, "Convert this Sigma rule to a YARA rule: ...", "yara"),
        (R, "Turn this YARA rule into Sigma for process events", "sigma"),
        (R, "write sql that counts failed logons per host", "sql"),
        (R, "Write a Sigma rule for this SQL injection", "sigma"),
        (R, "Write a Sigma rule to detect xp_cmdshell in SQL Server logs", "sigma"),
        (R, "Write a KQL query for rare parent processes", "kql"),
        (R, "Write the detection in KQL", "kql"),
        (R, "Translate this Splunk search to Kusto", "kql"),
        (R, "Write a Snort rule and a YARA rule for this C2", "yara"),
        # What is asked for is no kind checked here, or is not said.
        (R, "Write a hunting query for rare parent processes", None),
        (R, "Convert this Sigma rule to Splunk SPL", None),
        (R, "Convert this YARA rule into a Suricata rule", None),
        (R, "Write a YARA-L rule for Google Chronicle that flags logins", None),
        (R, "Write a detection rule for SQL injection attempts in IIS logs", None),
        (R, "Detect suspicious sql.exe processes", None),
        (R, "Write a KQL query for Kibana to find failed logins", None),
        (R, "Write a Suricata rule from this YARA rule's strings", None),
        (P, "Extract the IOCs as JSON: ...", "json"),
        (P, "Return JSON with src and dst", "json"),
        (P, "Pull the fields out, JSON output please", "json"),
        (P, "What is the source IP in this JSON log?", None),
        (P, "Here is an EDR alert in JSON format; extract the affected hostnames", None),
        (P, "Parse the following JSON output from CrowdStrike and summarize the threat", None),
        (TaskType.GENERAL_REASONING, "Explain what this YARA rule matches", None),
    ],
)
def test_the_kind_asked_for_is_the_one_named_as_the_answer(
    task_type: TaskType, prompt: str, kind: str | None
) -> None:
    assert asked_for(task_type, prompt) == kind


def test_a_wanted_kind_is_the_only_one_looked_for() -> None:
    sigma_answer = f"```yaml\n{SIGMA}```"
    assert pick(TaskType.RULE_GENERATION, sigma_answer, NONE, "yara") is None
    found = pick(TaskType.RULE_GENERATION, sigma_answer, NONE, "sigma")
    assert found is not None and found[0].kind == "sigma"


def test_repairs_are_held_to_the_format_where_vllm_has_a_grammar_for_it() -> None:
    assert validator("yara").constraint(NONE) == Constraint(grammar=GRAMMAR)
    json_mode = Constraint(response_format={"type": "json_object"})
    assert validator("json").constraint(NONE) == json_mode
    # A caller's schema is already the request's response_format.
    assert validator("json").constraint(CheckOptions(schema={"type": "object"})) is None
    assert all(validator(kind).constraint(NONE) is None for kind in ("sigma", "kql", "sql"))


def test_kql_is_parsed_with_the_kusto_grammar() -> None:
    kql = validator("kql")
    query = (
        "SigninLogs | where ResultType != 0\n"
        "| summarize failures = count() by UserPrincipalName, bin(TimeGenerated, 1h)\n"
        "| where failures > 10"
    )
    assert kql.check(query, NONE).ok
    broken = kql.check("SigninLogs | where ResultType != | project UserPrincipalName", NONE)
    assert not broken.ok and broken.error == "mismatched input '|' (line 1, column 34)"
    # What pySigma's Kusto backend writes parses too.
    converted = validator("sigma").check(SIGMA, CheckOptions(target="kusto"))
    assert kql.check(converted.conversions["kusto"], NONE).ok


@pytest.mark.parametrize(
    "answer",
    [
        "Try this:\n```kql\n{q}\n```",
        "```\n{q}\n```",
        "{q}",
        "Here is the query:\n{q}\n\nIt finds encoded PowerShell.",
    ],
)
def test_a_kql_answer_is_found_fenced_or_as_a_pipeline(answer: str) -> None:
    query = 'DeviceProcessEvents\n| where FileName =~ "powershell.exe"\n| take 10'
    found = pick(TaskType.RULE_GENERATION, answer.format(q=query), NONE)
    assert found is not None and found[0].kind == "kql" and found[1] == query


@pytest.mark.parametrize(
    "answer",
    [
        'index=win EventCode=4688 | where like(CommandLine, "%-enc%")',
        "ps | where {$_.CPU -gt 100}",
        "ls | sort -r",
        "Get-Process | where CPU -gt 10",
    ],
)
def test_splunk_and_shell_pipelines_are_not_taken_for_kql(answer: str) -> None:
    assert validator("kql").found_in(answer) is None


def test_a_kql_query_nested_past_what_the_parser_takes_fails_without_parsing() -> None:
    deep = "T | where " + "(" * 60 + "a == 1" + ")" * 60
    verdict = validator("kql").check(deep, NONE)
    assert not verdict.ok and verdict.error == "brackets nest 60 deep (at most 24)"


def test_a_sigma_target_asks_for_a_sigma_rule_whatever_the_prompt_names() -> None:
    ask = "Write a KQL query for encoded PowerShell"
    assert asked_for(TaskType.RULE_GENERATION, ask) == "kql"
    assert asked_for(TaskType.RULE_GENERATION, ask, CheckOptions(target="kusto")) == "sigma"


def test_the_yara_grammar_is_finite_so_a_repair_ends_without_a_token_cap() -> None:
    # Unbounded repetition is * or + outside quotes and character classes; every repetition
    # in the grammar is {m,n}, and no rule refers back to itself.
    bare = re.sub(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]', "", GRAMMAR)
    assert "*" not in bare and "+" not in bare
    rules = dict(line.split(" ::= ", 1) for line in bare.splitlines() if line)
    for name, body in rules.items():
        assert not re.search(rf"\b{name}\b", body), name

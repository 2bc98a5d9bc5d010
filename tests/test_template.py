"""The SAM template: linted (and the lint proven able to fail), and shaped as the design asks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devstack import template

CFN_LINT = Path(template.ROOT / ".venv-tools/bin/cfn-lint")


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    if not CFN_LINT.exists():
        pytest.fail("the template linter is missing: run `make lint-template` (make test does)")
    return subprocess.run(
        [str(CFN_LINT), "--regions", "eu-north-1", "--", str(path)], capture_output=True, text=True, check=False
    )


def test_template_passes_the_lint() -> None:
    result = lint(template.TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_template_fails_the_lint(tmp_path: Path) -> None:
    # Given the template with a runtime that does not exist and a !GetAtt to a missing resource
    text = template.TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python3.99", 1)
    text = text.replace(
        "Resources:\n",
        "Resources:\n  Broken:\n    Type: AWS::SQS::Queue\n    Properties:\n"
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt NoSuchQueue.Arn\n"
        "        maxReceiveCount: 5\n",
        1,
    )
    broken = tmp_path / "template.yaml"
    broken.write_text(text)
    shutil.copytree(template.ROOT / "functions", tmp_path / "functions")
    # When linted / Then both errors are reported
    result = lint(broken)
    assert result.returncode != 0
    assert "python3.99" in result.stdout and "NoSuchQueue" in result.stdout


def test_table_is_on_demand_with_pitr_and_ttl() -> None:
    props = template.load()["Resources"]["Table"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"]["Enabled"] is True


def test_functions_run_on_arm64_with_a_current_python() -> None:
    glob = template.load()["Globals"]["Function"]
    assert glob["Runtime"] in ("python3.12", "python3.13") and glob["Architectures"] == ["arm64"]


# Served without a token: Swagger UI, and the control panel's own files (its API calls carry one).
OPEN_ROUTES = {"/swagger", "/", "/assets/{version}/{file}"}


def test_every_route_but_swagger_and_the_page_needs_the_jwt_authorizer() -> None:
    api = template.load()["Resources"]["HttpApi"]["Properties"]["Auth"]
    assert api["DefaultAuthorizer"] == "JwtAuthorizer"
    for fn in template.resources("AWS::Serverless::Function").values():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                auth = event["Properties"].get("Auth", {}).get("Authorizer")
                assert auth is None or event["Properties"]["Path"] in OPEN_ROUTES


def test_the_page_function_has_no_aws_permissions() -> None:
    page = template.resources("AWS::Serverless::Function")["PageFunction"]["Properties"]
    assert "Policies" not in page and "Role" not in page
    assert page["MemorySize"] <= 256


def test_the_preview_function_has_no_aws_permissions() -> None:
    preview = template.resources("AWS::Serverless::Function")["PreviewFunction"]["Properties"]
    assert "Policies" not in preview and "Role" not in preview


def test_the_connectors_function_has_time_for_a_credential_check() -> None:
    # Twilio's check is two calls of connect 3 s + read 10 s (the default PROVIDER_READ_TIMEOUT)
    connectors = template.functions()["ConnectorsFunction"]
    assert ("POST", "/connectors/{connectorId}/verify") in [(m, p) for m, p, _ in connectors.routes]
    assert 2 * (3 + 10) < connectors.timeout <= 29


def test_observability_is_shipped() -> None:
    resources = template.load()["Resources"]
    functions = template.resources("AWS::Serverless::Function")
    groups = {r["Properties"]["LogGroupName"].value for r in template.resources("AWS::Logs::LogGroup").values()}
    assert {f"/aws/lambda/${{{name}}}" for name in functions} == groups
    assert all("RetentionInDays" in r["Properties"] for r in template.resources("AWS::Logs::LogGroup").values())
    query = resources["ConnectorErrorsQuery"]["Properties"]["QueryString"]
    assert "connector_id" in query and "error_code" in query and "recipient" in query
    alarms = template.resources("AWS::CloudWatch::Alarm")
    alarmed = {
        d["Value"].value.split(".")[0]
        for a in alarms.values()
        for m in a["Properties"].get("Metrics", [])
        for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert alarmed == {"SendDeadLetterQueue", "FallbackDeadLetterQueue"}
    for name in ("SendDeadLetterAlarm", "FallbackDeadLetterAlarm"):
        # fires when messages arrive (the count rose), so a second wave notifies again
        [expression] = [m["Expression"] for m in alarms[name]["Properties"]["Metrics"] if "Expression" in m]
        assert expression == "DIFF(FILL(visible, 0))"
        assert "make redrive" in alarms[name]["Properties"]["AlarmDescription"]
    rate = alarms["FailureRateAlarm"]["Properties"]["Metrics"]
    series = [m["Id"] for m in rate if "MetricStat" in m]
    filled = " ".join(m.get("Expression", "") for m in rate)
    assert len(series) == 9 and all(f"FILL({s}, 0)" in filled for s in series)  # one provider in use still alarms
    # CloudWatch cannot publish to a topic under the AWS-managed SNS key
    assert resources["AlarmTopic"]["Properties"].get("KmsMasterKeyId") != "alias/aws/sns"
    import json
    import re

    body = re.sub(r"\$\{[^}]+\}", "x", resources["Dashboard"]["Properties"]["DashboardBody"].value)
    assert len(json.loads(body)["widgets"]) >= 4


def test_numeric_parameters_allow_what_the_functions_accept() -> None:
    """A parameter the template bounds more tightly (or loosely) than the functions' own check
    would deploy a value the functions refuse at start, or refuse one they take."""
    import dataclasses
    import math

    from sms_connector import config

    doc = template.load()
    variables = doc["Globals"]["Function"]["Environment"]["Variables"]
    defaults = {f.name: f.default for f in dataclasses.fields(config.Settings)}
    checked = []
    for name, (low, high, _) in config._BOUNDS.items():
        ref = variables.get(name.upper())
        if getattr(ref, "tag", None) != "Ref":
            continue  # not set from a parameter
        parameter = doc["Parameters"][ref.value]
        assert parameter["Default"] == defaults[name], name
        assert parameter["MinValue"] == low, name
        assert parameter.get("MaxValue", math.inf) == high, name
        checked.append(name)
    assert len(checked) >= 3, checked  # the retention, the receipt deadline, the test sends

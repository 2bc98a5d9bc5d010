"""The deployment, dry: parameters that refuse empty values, samconfig.toml, what `make deploy`
would run, the CloudFormation the SAM transform produces (IAM scope, dead-letter queues and
their alarms: what cfn-lint does not check), `sam validate --lint`, and `sam build`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from devstack import template
from scripts.deploy import parameter_problem

ROOT = template.ROOT
SAM = ROOT / ".venv-sam/bin/sam"
TOOLS_PYTHON = ROOT / ".venv-tools/bin/python"
SAM_ENV = {"SAM_CLI_TELEMETRY": "0", "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}

# Resources a policy may name although the stack does not create them: each is documented.
DOCUMENTED = {
    # the connectors' secrets: created at run time by ConnectorsFunction, one per connector (README)
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:sms-connector/${Stage}/*",
    # the SES identity the fallback sends from: the EmailIdentity parameter, verified by the operator
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${EmailIdentity}",
}
# Actions AWS authorises only on "*" (they have no resource type).
STAR_ONLY_ACTIONS = {"cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# AWS managed policies SAM attaches by itself: logs for every function; for SQS event sources,
# receive/delete on the account's queues (SAM gives no way to narrow it short of a hand-written role).
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}


def sam_tools() -> Path:
    if not SAM.exists():
        pytest.fail("SAM CLI is missing: run `make build` or `make test` (they install .venv-sam)")
    return SAM


def python312() -> str:
    """The folder of a Python 3.12 for `sam build`, or a skip that prints why there is none."""
    found = subprocess.run([str(ROOT / "scripts/python312.sh")], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        print(found.stderr, file=sys.stderr)
        pytest.skip("no Python 3.12 interpreter, so no `sam build` dry run: " + " ".join(found.stderr.split()))
    return found.stdout.strip()


# --- parameters and samconfig.toml ------------------------------------------------------

PARAMETERS = template.load()["Parameters"]
# May be empty on purpose: no alarm emails; no custom domain in front of the receipts API.
OPTIONAL = {"AlarmEmail", "ReceiptsPublicUrl"}


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) - OPTIONAL))
def test_every_parameter_refuses_an_empty_value(name: str) -> None:
    assert parameter_problem(PARAMETERS[name], ""), f"{name} accepts an empty value"
    if "Default" in PARAMETERS[name]:
        assert parameter_problem(PARAMETERS[name], str(PARAMETERS[name]["Default"])) is None


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("JwtIssuer", ["https://cognito-idp.eu-north-1.amazonaws.com/eu-north-1_AbC"], ["", " ", "http://x.test"]),
        ("JwtAudience", ["client-1", "client-1,client-2"], ["", "a,,b", "a, b"]),
        ("EmailIdentity", ["example.com", "alerts@example.com", "mail.example.co.uk"], ["", "*", "*@example.com"]),
        ("AlarmEmail", ["", "ops@example.com"], ["ops", "ops@example"]),
    ],
)
def test_parameters_take_what_they_document(name: str, good: list[str], bad: list[str]) -> None:
    assert [v for v in good if parameter_problem(PARAMETERS[name], v)] == []
    assert [v for v in bad if not parameter_problem(PARAMETERS[name], v)] == []


def test_samconfig_has_a_region_and_its_own_stack_per_environment() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    environments = {name: env for name, env in config.items() if isinstance(env, dict)}
    assert set(environments) == {"default", "prod"}
    stacks = set()
    for name, env in environments.items():
        settings = env["global"]["parameters"]
        assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", settings.get("region", "")), f"{name} has no region"
        stacks.add(settings["stack_name"])
        stage = "prod" if name == "prod" else "dev"
        assert f"Stage={stage}" in env["deploy"]["parameters"]["parameter_overrides"]
        assert env["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM"
    assert len(stacks) == 2


def deploy(*args: str, config: Path | None = None, answers: str = "") -> subprocess.CompletedProcess[str]:
    extra = ["--config-file", str(config)] if config else []
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/deploy.py"), "--dry-run", *extra, *args],
        input=answers,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_first_deploy_is_guided_and_later_ones_are_not(tmp_path: Path) -> None:
    first = deploy("--config-env", "prod")
    assert first.returncode == 0, first.stderr
    assert first.stdout.rstrip().endswith("deploy --config-env prod --guided")
    assert "JwtIssuer (required)" in first.stdout and "EmailIdentity (required)" in first.stdout
    # Given the answers saved by the guided deploy
    saved = (
        (ROOT / "samconfig.toml")
        .read_text()
        .replace(
            'parameter_overrides = "Stage=prod"',
            'parameter_overrides = "Stage=prod JwtIssuer=\\"https://issuer.example.com\\" '
            'JwtAudience=\\"app-1,app-2\\" EmailIdentity=\\"example.com\\""',
        )
    )
    (tmp_path / "samconfig.toml").write_text(saved)
    later = deploy("--config-env", "prod", config=tmp_path / "samconfig.toml")
    assert later.returncode == 0, later.stderr
    assert later.stdout.rstrip().endswith("deploy --config-env prod")


def test_the_first_deploy_asks_for_the_required_values_until_the_template_takes_them() -> None:
    # Given answers that are empty or malformed first, then right
    answers = "\nhttps://issuer.example.com\n\napp-1,app-2\n*\nexample.com\n"
    asked = deploy("--config-env", "prod", "--ask", answers=answers)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.count("refused: ") == 3
    assert "refused: EmailIdentity must be an SES identity" in asked.stdout
    # Then SAM's guided questions get them as defaults
    overrides = (
        'Stage="prod" JwtIssuer="https://issuer.example.com" JwtAudience="app-1,app-2" EmailIdentity="example.com"'
    )
    assert asked.stdout.rstrip().endswith(f"--guided --parameter-overrides '{overrides}'")


def test_deploy_refuses_empty_saved_values_before_calling_sam(tmp_path: Path) -> None:
    saved = (
        (ROOT / "samconfig.toml")
        .read_text()
        .replace(
            'parameter_overrides = "Stage=dev"',
            'parameter_overrides = "Stage=dev JwtIssuer=\\"\\" JwtAudience=\\"\\" EmailIdentity=\\"*\\""',
        )
    )
    (tmp_path / "samconfig.toml").write_text(saved)
    refused = deploy(config=tmp_path / "samconfig.toml")
    assert refused.returncode == 1 and "$ " not in refused.stdout
    for name in ("JwtIssuer=''", "JwtAudience=''", "EmailIdentity='*'"):
        assert name in refused.stderr


def test_deploy_without_a_region_says_where_to_set_it(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(
        (ROOT / "samconfig.toml").read_text().replace('region = "eu-north-1"\n', "", 1)
    )
    refused = deploy(config=tmp_path / "samconfig.toml")
    assert refused.returncode == 1 and "set `region` in [default.global.parameters]" in refused.stderr


# --- the CloudFormation the SAM transform produces ---------------------------------------


def transform(path: Path = template.TEMPLATE) -> dict[str, Any]:
    if not TOOLS_PYTHON.exists():
        pytest.fail("the template tools are missing: run `make lint-template` (make test does)")
    result = subprocess.run(
        [str(TOOLS_PYTHON), str(ROOT / "scripts/sam_transform.py"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@cache
def transformed() -> dict[str, Any]:
    return transform()


class Checked:
    """The checks cfn-lint does not make, over one transformed template."""

    def __init__(self, cfn: dict[str, Any]) -> None:
        self.resources: dict[str, Any] = cfn["Resources"]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    def named(self, value: Any) -> set[str]:
        """The logical ids of this stack's resources that an expression refers to."""
        found: set[str] = set()
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "Ref" and inner in self.resources:
                    found.add(inner)
                elif key == "Fn::GetAtt":
                    target = inner[0] if isinstance(inner, list) else inner.split(".")[0]
                    found |= {target} & set(self.resources)
                elif key == "Fn::Sub":
                    text, variables = (inner, {}) if isinstance(inner, str) else inner
                    found |= {v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", text)} & set(self.resources)
                    found |= self.named(variables)
                else:
                    found |= self.named(inner)
        elif isinstance(value, list):
            for inner in value:
                found |= self.named(inner)
        return found

    def function_roles(self) -> dict[str, dict[str, Any]]:
        """function logical id -> its execution role."""
        roles = self.of_type("AWS::IAM::Role")
        return {
            name: roles[fn["Properties"]["Role"]["Fn::GetAtt"][0]]
            for name, fn in self.of_type("AWS::Lambda::Function").items()
        }

    def uses(self, function: str) -> set[str]:
        """What a function works with: what its environment names, the queues that feed it."""
        used = self.named(self.resources[function]["Properties"].get("Environment", {}))
        for mapping in self.of_type("AWS::Lambda::EventSourceMapping").values():
            if mapping["Properties"]["FunctionName"] == {"Ref": function}:
                used |= self.named(mapping["Properties"]["EventSourceArn"])
        return used

    def statements(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for function, role in self.function_roles().items():
            for policy in role["Properties"].get("Policies", []):
                found += [(function, statement) for statement in policy["PolicyDocument"]["Statement"]]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):  # outside the roles: scoped the same way
            for name, policy in self.of_type(kind).items():
                found += [(name, statement) for statement in policy["Properties"]["PolicyDocument"]["Statement"]]
        return [(owner, s) for owner, s in found if s.get("Effect") == "Allow"]

    def policy_problems(self) -> list[str]:
        """Statements whose resources are neither this stack's nor documented, or '*' without need."""
        problems = []
        for owner, statement in self.statements():
            actions = set(as_list(statement["Action"]))
            for resource in as_list(statement.get("Resource", [])):
                text = sub_text(resource)
                if resource == "*":
                    if not actions <= STAR_ONLY_ACTIONS:
                        problems.append(f"{owner}: {sorted(actions)} on '*'")
                elif self.named(resource):
                    if text and ("${AWS::AccountId}" not in text or "${AWS::Region}" not in text):
                        problems.append(f"{owner}: {text} is not scoped to this account and region")
                elif text not in DOCUMENTED:
                    problems.append(f"{owner}: {json.dumps(resource)} names nothing of this stack")
        return problems

    def overreach(self) -> dict[str, list[str]]:
        """function -> the stack resources its policies grant but it does not use."""
        found = {}
        for function in self.function_roles():
            granted: set[str] = set()
            for owner, statement in self.statements():
                if owner == function:
                    granted |= self.named(as_list(statement.get("Resource", [])))
            if granted - self.uses(function):
                found[function] = sorted(granted - self.uses(function))
        return found

    def queue_problems(self) -> list[str]:
        queues = self.of_type("AWS::SQS::Queue")
        dead_letter = set()
        for q in queues.values():
            if "RedrivePolicy" in q.get("Properties", {}):
                dead_letter |= self.named(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        problems = [
            f"{name} has no dead-letter queue"
            for name, q in queues.items()
            if name not in dead_letter and "RedrivePolicy" not in q.get("Properties", {})
        ]
        alarmed: set[str] = set()
        for alarm in self.of_type("AWS::CloudWatch::Alarm").values():
            props = alarm["Properties"]
            if not props.get("AlarmActions"):
                continue
            # a plain metric alarm, or a metric-math one (e.g. "new messages arrived")
            metrics = [props] + [m.get("MetricStat", {}).get("Metric", {}) for m in props.get("Metrics", [])]
            for metric in metrics:
                if metric.get("MetricName") == "ApproximateNumberOfMessagesVisible":
                    for dimension in metric.get("Dimensions", []):
                        if dimension["Name"] == "QueueName":
                            alarmed |= self.named(dimension["Value"])
        return problems + [f"no alarm on the dead-letter queue {name}" for name in sorted(dead_letter - alarmed)]


def sub_text(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::Sub" in value:
        inner = value["Fn::Sub"]
        return inner if isinstance(inner, str) else inner[0]
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_policy_statement_names_this_stacks_resources_or_a_documented_prefix() -> None:
    checked = Checked(transformed())
    assert len(checked.statements()) >= 10  # the check sees the statements (it would pass on none)
    assert checked.policy_problems() == []


def test_each_function_may_touch_only_what_it_uses() -> None:
    checked = Checked(transformed())
    assert checked.uses("SenderFunction") >= {"Table", "SendQueue", "FallbackQueue"}
    assert checked.overreach() == {}


def test_functions_carry_only_the_managed_policies_sam_adds() -> None:
    roles = Checked(transformed()).function_roles()
    extra = {name: set(role["Properties"].get("ManagedPolicyArns", [])) for name, role in roles.items()}
    assert {name: arns - MANAGED_POLICIES for name, arns in extra.items() if arns - MANAGED_POLICIES} == {}


def test_every_queue_has_a_dead_letter_queue_and_every_dead_letter_queue_an_alarm() -> None:
    checked = Checked(transformed())
    assert len(checked.of_type("AWS::SQS::Queue")) >= 4
    assert checked.queue_problems() == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    # Given the template with a queue without a DLQ, a DLQ without its alarm, a grant on "*",
    # a grant outside the stack, and a function granted a queue it does not use
    text = template.TEMPLATE.read_text()
    text = text.replace(
        "Resources:\n",
        "Resources:\n  OrphanQueue:\n    Type: AWS::SQS::Queue\n    Properties:\n      SqsManagedSseEnabled: true\n",
        1,
    )
    alarm = text.index("  FallbackDeadLetterAlarm:")
    text = text[:alarm] + text[text.index("  FailureRateAlarm:") :]
    text = text.replace(
        "        - SQSSendMessagePolicy:\n            QueueName: !GetAtt FallbackQueue.QueueName\n",
        "        - SQSSendMessagePolicy:\n            QueueName: !GetAtt FallbackQueue.QueueName\n"
        "        - SQSSendMessagePolicy:\n            QueueName: !GetAtt SendDeadLetterQueue.QueueName\n"
        "        - Statement:\n            - Effect: Allow\n              Action: sqs:DeleteQueue\n"
        "              Resource: '*'\n            - Effect: Allow\n              Action: s3:GetObject\n"
        "              Resource: arn:aws:s3:::someone-elses-bucket/*\n",
        1,
    )
    broken = tmp_path / "template.yaml"
    broken.write_text(text)
    checked = Checked(transform(broken))
    # Then every check reports its part
    assert checked.queue_problems() == [
        "OrphanQueue has no dead-letter queue",
        "no alarm on the dead-letter queue FallbackDeadLetterQueue",
    ]
    problems = checked.policy_problems()
    assert "SenderFunction: ['sqs:DeleteQueue'] on '*'" in problems
    assert any("someone-elses-bucket" in p for p in problems)
    assert checked.overreach() == {"SenderFunction": ["SendDeadLetterQueue"]}


# --- SAM CLI -----------------------------------------------------------------------------


def test_sam_validate_lint_passes() -> None:
    result = subprocess.run(
        [str(sam_tools()), "validate", "--lint", "--region", "eu-north-1", "--template", str(template.TEMPLATE)],
        cwd=ROOT,
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_makes_arm64_python312_artifacts(tmp_path: Path) -> None:
    sam = sam_tools()
    py312 = python312()
    build = tmp_path / "build"
    result = subprocess.run(
        [
            str(sam),
            "build",
            "--template",
            str(template.TEMPLATE),
            "--build-dir",
            str(build),
            "--cached",
            "--cache-dir",
            str(ROOT / ".aws-sam/cache"),
            "--parallel",
        ],
        cwd=ROOT,
        env=SAM_ENV | {"PATH": f"{py312}:{SAM_ENV['PATH']}"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Build Succeeded" in result.stdout
    assert {p.name for p in build.iterdir() if p.is_dir()} == set(template.functions()) | {"SharedLayer"}
    cores = list((build / "SharedLayer/python/pydantic_core").glob("_pydantic_core.*.so"))
    assert [c.name for c in cores] == ["_pydantic_core.cpython-312-aarch64-linux-gnu.so"]
    assert (build / "SharedLayer/python/sms_connector/sending/record.py").exists()

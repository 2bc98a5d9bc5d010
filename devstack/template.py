"""Reads template.yaml: the one source of the routes, tables, queues and functions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _Tag:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return _Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct)


@cache
def load() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in load()["Resources"].items() if r["Type"] == kind}


def table_definition(name: str = "Table") -> dict[str, Any]:
    """The `create_table` arguments for a table of the template (for moto)."""
    props = load()["Resources"][name]["Properties"]
    definition: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if "GlobalSecondaryIndexes" in props:
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return definition


def ttl_attribute(name: str = "Table") -> str | None:
    spec = load()["Resources"][name]["Properties"].get("TimeToLiveSpecification")
    return spec["AttributeName"] if spec and spec.get("Enabled") else None


def dead_letter_queues() -> list[str]:
    """The queues that another queue's RedrivePolicy sends its failed messages to."""
    targets = []
    for props in (q.get("Properties", {}) for q in resources("AWS::SQS::Queue").values()):
        arn = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if isinstance(arn, _Tag) and arn.tag == "GetAtt":
            name = arn.value.split(".")[0] if isinstance(arn.value, str) else arn.value[0]
            targets.append(name)
    return sorted(set(targets))


@dataclass
class Function:
    name: str
    code_uri: str
    handler: str
    timeout: int
    environment: dict[str, Any]
    routes: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, path, needs a JWT)
    queues: list[dict[str, Any]] = field(default_factory=list)  # SQS event properties
    schedules: list[str] = field(default_factory=list)  # schedule expressions, e.g. rate(5 minutes)


def functions() -> dict[str, Function]:
    doc = load()
    glob = doc.get("Globals", {}).get("Function", {})
    found: dict[str, Function] = {}
    for name, res in resources("AWS::Serverless::Function").items():
        props = res["Properties"]
        env = dict(glob.get("Environment", {}).get("Variables", {}))
        env.update(props.get("Environment", {}).get("Variables", {}))
        fn = Function(
            name=name,
            code_uri=props["CodeUri"],
            handler=props["Handler"],
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            environment=env,
        )
        for event in props.get("Events", {}).values():
            if event["Type"] == "HttpApi":
                open_route = event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
                fn.routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], not open_route))
            elif event["Type"] == "SQS":
                fn.queues.append(event["Properties"])
            elif event["Type"] == "Schedule":
                fn.schedules.append(event["Properties"]["Schedule"])
        found[name] = fn
    for method, path, function in _raw_routes(found):
        found[function].routes.append((method, path, False))
    return found


def _raw_routes(found: dict[str, Function]) -> list[tuple[str, str, str]]:
    """Routes written as AWS::ApiGatewayV2 resources (the receipts API): (method, path, function).
    Their integration names its function by name, `${AWS::StackName}-...`; no authorizer."""
    by_name = {}
    for name, res in resources("AWS::Serverless::Function").items():
        function_name = res["Properties"].get("FunctionName")
        if isinstance(function_name, _Tag):
            by_name[str(function_name.value)] = name
    routes = []
    integrations = resources("AWS::ApiGatewayV2::Integration")
    for res in resources("AWS::ApiGatewayV2::Route").values():
        props = res["Properties"]
        method, _, path = props["RouteKey"].partition(" ")
        target = str(props["Target"].value).removeprefix("integrations/${").removesuffix("}")
        uri = str(integrations[target]["Properties"]["IntegrationUri"].value)
        function = by_name.get(uri.rpartition(":function:")[2])
        if function is None or props.get("AuthorizationType", "NONE") != "NONE":
            raise ValueError(f"the local stack cannot serve the route {props['RouteKey']}")
        routes.append((method.upper(), path, function))
    return routes


def route_pattern(path: str) -> re.Pattern[str]:
    """'/connectors/{connectorId}' -> a regex matching one path segment per parameter."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")

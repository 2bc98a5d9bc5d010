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
    routes: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    queues: list[dict[str, Any]] = field(default_factory=list)  # SQS event properties


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
                fn.routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
            elif event["Type"] == "SQS":
                fn.queues.append(event["Properties"])
        found[name] = fn
    return found


def route_pattern(path: str) -> re.Pattern[str]:
    """'/connectors/{connectorId}' -> a regex matching one path segment per parameter."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")

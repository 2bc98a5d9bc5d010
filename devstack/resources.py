"""Creates the template's AWS resources in moto and resolves the functions' environments.

Only what the functions use is created (the table, the queues with their redrive policies);
`!Ref`, `!GetAtt`, `!Sub` and `!FindInMap` in environment variables are resolved against
what was created, so the local stack runs each function with the environment the template
gives it in AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3

from . import template
from .template import _Tag

ACCOUNT = "123456789012"


@dataclass
class Stack:
    region: str
    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> GetAtt values

    def resolve(self, value: Any) -> Any:
        if isinstance(value, _Tag):
            return self._resolve_tag(value)
        if isinstance(value, dict):
            if len(value) == 1:
                ((name, inner),) = value.items()
                if name.startswith("Fn::") or name == "Ref":
                    return self._resolve_tag(_Tag(name.removeprefix("Fn::"), inner))
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _resolve_tag(self, tag: _Tag) -> Any:
        if tag.tag == "Ref":
            return self._ref(tag.value)
        if tag.tag == "GetAtt":
            name, _, attribute = tag.value.partition(".") if isinstance(tag.value, str) else tag.value
            return self.attributes[name][attribute]
        if tag.tag == "Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub(m.group(1))), tag.value)
        if tag.tag == "FindInMap":
            mapping, key, name = (self.resolve(v) for v in tag.value)
            return template.load()["Mappings"][mapping][key][name]
        if tag.tag == "If":
            condition, yes, no = tag.value
            return self.resolve(yes if self.condition(condition) else no)
        if tag.tag == "Equals":
            left, right = (self.resolve(v) for v in tag.value)
            return str(left) == str(right)
        if tag.tag == "Not":
            return not self.resolve(tag.value[0])
        if tag.tag == "Condition":
            return self.condition(tag.value)
        raise ValueError(f"the local stack cannot resolve !{tag.tag}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(template.load()["Conditions"][name]))

    def _sub(self, name: str) -> Any:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attributes[resource][attribute]
        return self._ref(name)

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "sms-connector-local",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"unknown reference {name}")

    def environment(self, function_name: str) -> dict[str, str]:
        fn = template.functions()[function_name]
        return {k: str(self.resolve(v)) for k, v in fn.environment.items()}


def default_parameters(overrides: dict[str, str] | None = None) -> dict[str, str]:
    values = {name: str(spec["Default"]) for name, spec in template.load()["Parameters"].items() if "Default" in spec}
    values |= {
        "JwtIssuer": "http://127.0.0.1/local-issuer",
        "JwtAudience": "sms-connector-local",
        "EmailIdentity": "example.com",
    }
    return values | (overrides or {})


def create(region: str, parameters: dict[str, str], table_name: str = "sms-connector") -> Stack:
    """Create the table and the queues of the template in the AWS that boto3 points at (moto)."""
    stack = Stack(region=region, parameters=parameters)
    dynamodb = boto3.client("dynamodb", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    for name in template.resources("AWS::DynamoDB::Table"):
        physical = table_name if name == "Table" else f"{table_name}-{name}"
        dynamodb.create_table(TableName=physical, **template.table_definition(name))
        ttl = template.ttl_attribute(name)
        if ttl:
            dynamodb.update_time_to_live(
                TableName=physical, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
            )
        stack.refs[name] = physical
        stack.attributes[name] = {"Arn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{physical}"}
    for name in template.resources("AWS::ApiGatewayV2::Api"):
        stack.refs[name] = f"local-{name.lower()}"  # served by the local HTTP API (see api_server)
    queues = template.resources("AWS::SQS::Queue")
    # Dead-letter queues first: the others' redrive policies name them.
    ordered = sorted(queues, key=lambda n: "RedrivePolicy" in queues[n].get("Properties", {}))
    for name in ordered:
        props = queues[name].get("Properties", {})
        attributes = {k: str(props[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod") if k in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(stack.resolve(props["RedrivePolicy"]))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        stack.refs[name] = url
        stack.attributes[name] = {"Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", "QueueName": name, "QueueUrl": url}
    return stack


def queue_of(stack: Stack, event_properties: dict[str, Any]) -> str:
    """The URL of the queue an SQS event source reads (its `Queue` is a !GetAtt ...Arn)."""
    arn = stack.resolve(event_properties["Queue"])
    name = arn.rsplit(":", 1)[1]
    return stack.refs[name]


def forget_table_copies() -> None:
    """moto keeps every DynamoDB model object it ever made (tables, items), and each
    transaction deep-copies the table for its rollback: a long local run (or a storm test)
    would grow by the table's size per transaction. Only moto's own bookkeeping forgets
    them: the tables and their items stay."""
    from moto.core.base_backend import model_data

    for model in model_data["dynamodb"].values():
        model.instances_tracked.clear()  # type: ignore[attr-defined]

"""`make deploy`: `sam deploy` for one environment of samconfig.toml, guided the first time.

The first time (the environment's `parameter_overrides` lacks a parameter that has no default)
it runs `sam deploy --guided`, which asks for them and can save the answers to samconfig.toml;
afterwards `sam deploy --config-env ENV`. Saved values are checked against the template's own
constraints first, so an empty JwtIssuer is refused here rather than by CloudFormation after
the upload. `--dry-run` prints the command instead of running it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack import template  # noqa: E402 - after the path is set


def parameter_problem(spec: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse `value` for a parameter declared as `spec`, or None."""
    why = spec.get("ConstraintDescription") or "is not allowed"
    if "AllowedValues" in spec:
        return None if value in [str(v) for v in spec["AllowedValues"]] else f"must be one of {spec['AllowedValues']}"
    if spec["Type"] == "Number":
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        if number < float(spec.get("MinValue", number)) or number > float(spec.get("MaxValue", number)):
            return why
        return None
    values = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
    for item in values:
        if len(item) < int(spec.get("MinLength", 0)) or len(item) > int(spec.get("MaxLength", len(item))):
            return why
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], item):
            return why
    return None


def overrides_of(deploy: dict[str, Any]) -> dict[str, str]:
    raw = deploy.get("parameter_overrides", "")
    items = raw if isinstance(raw, list) else shlex.split(raw)
    return dict(item.split("=", 1) for item in items if "=" in item)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-env", default="default", help="the samconfig.toml environment (default, prod)")
    parser.add_argument("--guided", action="store_true", help="ask for every parameter again")
    parser.add_argument("--dry-run", action="store_true", help="print the sam command, do not run it")
    parser.add_argument("--config-file", type=Path, default=ROOT / "samconfig.toml", help=argparse.SUPPRESS)
    parser.add_argument("--sam", default=str(ROOT / ".venv-sam/bin/sam"), help=argparse.SUPPRESS)
    parser.add_argument("--ask", action="store_true", help=argparse.SUPPRESS)  # ask even without a terminal
    args = parser.parse_args(argv)

    config = tomllib.loads(args.config_file.read_text())
    name = args.config_env
    environments = [k for k, v in config.items() if isinstance(v, dict)]
    if name not in environments:
        print(f"samconfig.toml has no environment '{name}' (it has: {', '.join(environments)}).", file=sys.stderr)
        return 1
    env = config[name]
    settings = env.get("global", {}).get("parameters", {}) | env.get("deploy", {}).get("parameters", {})
    region = settings.get("region")
    if not region:
        print(f"samconfig.toml: set `region` in [{name}.global.parameters].", file=sys.stderr)
        return 1

    parameters = template.load()["Parameters"]
    overrides = overrides_of(settings)
    problems = [f"  {key}={value!r}: unknown parameter" for key, value in overrides.items() if key not in parameters]
    problems += [
        f"  {key}={value!r}: {why}"
        for key, value in overrides.items()
        if key in parameters and (why := parameter_problem(parameters[key], value))
    ]
    if problems:
        print(
            f"samconfig.toml [{name}.deploy.parameters] parameter_overrides has values the template refuses:\n"
            + "\n".join(problems)
            + f"\nFix them there, or answer again: make deploy ENV={name} GUIDED=1",
            file=sys.stderr,
        )
        return 1
    missing = [key for key, spec in parameters.items() if "Default" not in spec and key not in overrides]
    guided = args.guided or bool(missing)
    command = [args.sam, "deploy", "--config-env", name] + (["--guided"] if guided else [])

    if not args.dry_run and not _has_credentials(region):
        print(
            "No AWS credentials found: configure them first (`aws configure`, `aws sso login`, an AWS_PROFILE, "
            "or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).",
            file=sys.stderr,
        )
        return 1
    stack = settings.get("stack_name", "?")
    if guided:
        print(f"Deploying stack {stack} to {region}. sam deploy --guided asks for each parameter:")
        for key, spec in parameters.items():
            mark = " (required)" if key in missing else ""
            print(f"  {key}{mark}: {' '.join(str(spec.get('Description', '')).split())}")
        print(
            "Keep the stack name and region it proposes (from samconfig.toml), allow the IAM role "
            "creation, and answer Y to 'Save arguments to configuration file': the next `make deploy` "
            "then runs without questions."
        )
    if missing and (args.ask or (sys.stdin.isatty() and not args.dry_run)):
        # Ask for the values SAM's guided mode would take empty, refusing what the template
        # refuses; they become the defaults of its own questions.
        print("First, the parameters without a default (SAM then shows them as its defaults):")
        answers = {key: ask(key, parameters[key]) for key in missing}
        given = overrides | answers
        command += ["--parameter-overrides", " ".join(f'{key}="{value}"' for key, value in given.items())]
    print("$ " + " ".join(shlex.quote(part) for part in command), flush=True)
    if args.dry_run:
        return 0
    os.execve(command[0], command, os.environ | {"SAM_CLI_TELEMETRY": "0"})  # noqa: S606 - our own SAM CLI
    return 0  # not reached


def ask(key: str, spec: dict[str, Any]) -> str:
    """A value for `key`, asked until the template would take it."""
    while True:
        try:
            value = input(f"  {key}: ").strip()
        except EOFError:
            raise SystemExit(f"No value for {key}: nothing deployed.") from None
        why = parameter_problem(spec, value) or ('must not contain "' if '"' in value else None)
        if why is None:
            return value
        print(f"    refused: {key} {why}")


def _has_credentials(region: str) -> bool:
    import boto3

    return boto3.Session(region_name=region).get_credentials() is not None


if __name__ == "__main__":
    sys.exit(main())

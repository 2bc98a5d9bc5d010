"""Print the CloudFormation the SAM transform makes of template.yaml, as JSON.

Run it with `.venv-tools/bin/python` (it uses cfn-lint's copy of aws-sam-translator, the one
that `sam validate --lint` uses too): tests/test_deploy.py checks what the transform produces
for the things cfn-lint does not look at (IAM scope, dead-letter queues and their alarms).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else ROOT / "template.yaml"
    region = argv[2] if len(argv) > 2 else "eu-north-1"
    template, problems = decode(str(path))
    if problems or template is None:
        print("\n".join(str(p) for p in problems), file=sys.stderr)
        return 1
    transform = Transform(str(path), template, region)
    errors = transform.transform_template()
    if errors:
        print("\n".join(str(e) for e in errors), file=sys.stderr)
        return 1
    json.dump(transform.template(), sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

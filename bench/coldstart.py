"""Cold starts: each function's init in fresh interpreters against its floor, and its first request.

- **Cold init**: from the moment the interpreter is started to the moment the handler is ready:
  the function's module imported (the way Lambda imports it) and the AWS clients it creates.
  Interpreter start-up is in every figure, the floors' too, as it is in Lambda's init.
- **Floor**: `import boto3` and the same clients (the issue's definition). A function that
  creates no client (the page, the preview, the docs) has the bare interpreter and `import json`
  as its floor: what any Python handler pays.
- **The same + Powertools**: the floor plus the Powertools parts the function uses with nothing
  of ours (the API functions: the HTTP resolver with validation on, which brings pydantic, and
  the Logger; the queue consumers: the Logger and the metrics). What is above it is ours.
- **The same, validation off** (the API functions only): the floor, the Logger and the HTTP
  resolver without validation (so without pydantic): what Powertools' routing alone costs.
- **First request**: in the same interpreter, right after init, one representative request;
  its AWS calls are answered locally with the answers moto gave the same request (recorded just
  before), and its provider calls with the simulator's answers, so no network time is in it.
  Its floor makes the same AWS calls, with the same parameters and answers, through the
  floor's clients. This is where work moved out of init
  (deferred model building, the OpenAPI document) shows up.

Every process reads bytecode from a private cache (`.bench/pycache`, written by a warm-up run),
as from a layer built with bytecode. The column "layer from source" runs the same init with no
bytecode for the layer's packages (ours and its requirements; boto3 keeps its bytecode, as the
Lambda runtime's does): what a layer built without bytecode costs at each cold start.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
BUILD = ROOT / ".bench"
PYCACHE = BUILD / "pycache"
PYCACHE_SOURCE_LAYER = BUILD / "pycache-layer-from-source"
PY = sys.executable

# The AWS clients each function creates (lazily, in sms_connector.aws, on its first call).
CLIENTS: dict[str, tuple[str, ...]] = {
    "ConnectorsFunction": ("dynamodb", "secretsmanager"),
    "DocsFunction": (),
    "PageFunction": (),
    "SenderFunction": ("dynamodb", "secretsmanager", "sqs"),
    "FallbackFunction": ("dynamodb", "sesv2"),
    "SendApiFunction": ("dynamodb", "secretsmanager"),
    "ReceiptFunction": ("dynamodb", "secretsmanager", "sqs"),
    "SweepFunction": ("dynamodb", "secretsmanager"),
    "StatsFunction": ("dynamodb",),
    "PreviewFunction": (),
}
_RESOLVER = (
    "from aws_lambda_powertools import Logger\nLogger()\n"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
    "APIGatewayHttpResolver(enable_validation=True)\n"
)
_RESOLVER_UNVALIDATED = (
    "from aws_lambda_powertools import Logger\nLogger()\n"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
    "APIGatewayHttpResolver()\n"
)
_CONSUMER = (
    "from aws_lambda_powertools import Logger\nLogger()\nfrom aws_lambda_powertools.metrics import EphemeralMetrics\n"
)
# The Powertools parts each function uses, for the column that adds them to the floor.
STACK = {
    "ConnectorsFunction": ("resolver", _RESOLVER),
    "SendApiFunction": ("resolver", _RESOLVER),
    "StatsFunction": ("resolver", _RESOLVER),
    "PreviewFunction": ("resolver", _RESOLVER),
    "SenderFunction": ("Logger, Metrics", _CONSUMER),
    "FallbackFunction": ("Logger, Metrics", _CONSUMER),
    "ReceiptFunction": ("Logger", "from aws_lambda_powertools import Logger\nLogger()\n"),
    "SweepFunction": ("Logger", "from aws_lambda_powertools import Logger\nLogger()\n"),
}
# The API functions: the same Powertools parts with the resolver's validation off.
UNVALIDATED = {name: _RESOLVER_UNVALIDATED for name, (label, _) in STACK.items() if label == "resolver"}
ENV = {
    "TABLE_NAME": "bench",
    "AWS_DEFAULT_REGION": "eu-north-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "sms-connector",
    "POWERTOOLS_METRICS_NAMESPACE": "SmsConnector",
}

# Runs in the fresh interpreter. Prints [its clock when the handler was ready, first request s].
_CHILD = r"""
import json, sys, time
spec = json.load(open(sys.argv[1]))

def replay(clients, calls):
    # Answer each AWS call with the recorded answer to the same operation, in order.
    if not calls:
        return
    from botocore.awsrequest import AWSResponse

    class Raw:
        def __init__(self, body):
            self.body = body

        def stream(self, **_):
            yield self.body

    queues = {}
    for call in calls:
        queues.setdefault(call["operation"], []).append(call)

    def answer(request, event_name, **_):
        call = queues[event_name.rsplit(".", 1)[1]].pop(0)
        return AWSResponse(request.url, call["status"], call["headers"], Raw(call["body"].encode()))

    for client in clients:
        client.meta.events.register_first("before-send", answer)

def replay_provider(answers):
    # Answer each provider call with a recorded answer, in order (no network time either).
    if not answers:
        return
    import threading
    import urllib3
    from sms_connector.providers import base, elks46, telnyx, twilio

    lock = threading.Lock()
    queue = list(answers)

    def request(method, url, *, headers, body=None):
        with lock:
            answer = queue.pop(0)
        return urllib3.HTTPResponse(body=answer["body"].encode(), status=answer["status"], headers=answer["headers"])

    for module in (base, elks46, telnyx, twilio):
        module.request = request

class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-north-1:123456789012:function:bench"
    aws_request_id = "bench"
    function_version = "$LATEST"
    log_group_name = log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 60000

kind = spec["kind"]
if kind == "function":
    sys.path.append(spec["layer"])
    import importlib.util
    found = importlib.util.spec_from_file_location("app", spec["module"])
    module = importlib.util.module_from_spec(found)
    sys.modules["app"] = module  # registered before it runs, as Lambda's import does
    found.loader.exec_module(module)
    clients = []
    if spec["clients"]:
        from sms_connector import aws
        clients = [aws.client(name) for name in spec["clients"]]
else:
    clients = {}
    if spec["clients"]:
        import boto3
        clients = {name: boto3.client(name) for name in spec["clients"]}
    exec(spec.get("stack") or "")
ready = time.monotonic()
import os
memory = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")  # resident: a snapshot's size
first = None
if spec.get("request"):
    started = time.perf_counter()
    request = spec["request"]
    if kind == "function":
        replay(clients, request["calls"])
        replay_provider(request["provider"])
        answer = module.handler(request["event"], Context())
        status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
        assert status == request["status"], (status, answer)
        assert not (isinstance(answer, dict) and answer.get("batchItemFailures")), answer
    elif request["calls"]:
        import botocore.exceptions
        replay(clients.values(), request["calls"])
        for call in request["calls"]:
            try:
                getattr(clients[call["service"]], call["method"])(**call["params"])
            except botocore.exceptions.ClientError:
                pass  # recorded as an error: the function got the same one
    first = time.perf_counter() - started
print(json.dumps([ready, first, memory]), flush=True)
"""


@dataclass
class Request:
    """A representative first request, and the AWS calls it made (with moto's answers)."""

    label: str
    event: dict[str, Any]
    status: int = 200
    calls: list[dict[str, Any]] = field(default_factory=list)
    provider: list[dict[str, Any]] = field(default_factory=list)  # the providers' answers


def _env(extra: dict[str, str], *, write: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH", "POWERTOOLS_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= ENV | extra
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(spec: dict[str, Any], env: dict[str, str], pycache: Path) -> tuple[float, float | None, int]:
    """One fresh interpreter: (cold init in seconds, first request in seconds or None, its
    resident memory after init in bytes; Linux)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=BUILD, delete=False) as f:
        json.dump(spec, f)
    try:
        started = time.monotonic()
        out = subprocess.run(
            [PY, "-X", f"pycache_prefix={pycache}", "-c", _CHILD, f.name],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        if out.returncode:
            raise RuntimeError(f"{spec['kind']} {spec.get('module', '')} failed:\n{out.stderr[-3000:]}")
        ready, first, memory = json.loads(out.stdout.strip().splitlines()[-1])
        return ready - started, first, memory
    finally:
        os.unlink(f.name)


def _function_env(name: str) -> dict[str, str]:
    """The function's own environment from the template, where it is plain text."""
    from devstack import template

    fn = template.functions()[name]
    return {k: v for k, v in fn.environment.items() if isinstance(v, str) and not k.startswith("AWS_")}


def _layer_from_source_cache() -> Path:
    """A copy of the bytecode cache without the layer's packages (ours and its requirements)."""
    shutil.rmtree(PYCACHE_SOURCE_LAYER, ignore_errors=True)
    shutil.copytree(PYCACHE, PYCACHE_SOURCE_LAYER)
    layer = BUILD / "layer" / "python"
    names = {p.name.removesuffix(".py") for p in layer.iterdir() if not p.name.endswith(("-info", "__pycache__"))}
    names |= {"sms_connector"}
    for path in sorted(PYCACHE_SOURCE_LAYER.rglob("*"), reverse=True):
        if path.is_dir() and path.name in names and path.parent.name in ("site-packages", "shared"):
            shutil.rmtree(path)
        elif path.is_file() and path.parent.name == "site-packages" and path.name.split(".")[0] in names:
            path.unlink()
    for functions in PYCACHE_SOURCE_LAYER.rglob("functions"):
        shutil.rmtree(functions, ignore_errors=True)
    return PYCACHE_SOURCE_LAYER


@dataclass
class Figures:
    name: str
    floor_label: str
    init: float
    floor: float
    stack_label: str | None
    stack: float | None
    unvalidated: float | None
    boto3: float | None  # `import boto3`, for a function that creates no client (else None)
    source: float
    request: str | None
    first: float | None
    first_floor: float | None
    calls: int
    memory: int  # resident memory after init, bytes


def measure(requests: dict[str, Request], runs: int, extra_env: dict[str, str]) -> list[Figures]:
    """Every function of the template: cold init, its floors, and its first request."""
    from devstack import template

    BUILD.mkdir(exist_ok=True)
    figures = []
    source_cache: Path | None = None
    for name, fn in template.functions().items():
        clients = list(CLIENTS[name])
        module = str(ROOT / fn.code_uri / (fn.handler.rsplit(".", 1)[0] + ".py"))
        env = _function_env(name) | extra_env
        request = requests.get(name)
        req = (
            {"event": request.event, "status": request.status, "calls": request.calls, "provider": request.provider}
            if request is not None
            else None
        )
        ours = {"kind": "function", "layer": str(LAYER), "module": module, "clients": clients, "request": req}
        if clients:
            floor = {"kind": "floor", "clients": clients, "request": req}
            floor_label = f"boto3 + {', '.join(clients)}"
        else:
            floor = {"kind": "floor", "clients": [], "stack": "import json", "request": req}
            floor_label = "python + import json"
        # Init only, with nothing of ours: the Powertools parts it uses; with validation off (API
        # functions); and the floor for every function, `import boto3` and the same
        # clients, which for a function that creates none is `import boto3` alone (shown beside
        # the stricter floor above).
        stack_label, stack_code = STACK.get(name, (None, None))
        codes = {
            "stack": stack_code,
            "unvalidated": UNVALIDATED.get(name),
            "boto3": None if clients else "import boto3",
        }
        others: dict[str, dict[str, Any]] = {
            k: {"kind": "floor", "clients": clients, "stack": code} for k, code in codes.items() if code
        }
        # Warm-up: writes the bytecode cache for everything these processes import.
        for spec in (ours, floor, *others.values()):
            _run(spec, _env(env, write=True), PYCACHE)
        if source_cache is None:
            source_cache = _layer_from_source_cache()
        # Interleaved, so that drifting load on a shared machine hits all alike.
        samples: dict[str, list[float]] = {k: [] for k in ("init", "floor", *codes, "source", "first", "ff")}
        memory = []
        for _ in range(runs):
            init, first, rss = _run(ours, _env(env, write=False), PYCACHE)
            memory.append(rss)
            samples["init"].append(init)
            if first is not None:
                samples["first"].append(first)
            floor_init, floor_first, _ = _run(floor, _env(env, write=False), PYCACHE)
            samples["floor"].append(floor_init)
            if floor_first is not None:
                samples["ff"].append(floor_first)
            for k, spec in others.items():
                samples[k].append(_run(spec, _env(env, write=False), PYCACHE)[0])
            samples["source"].append(_run(ours | {"request": None}, _env(env, write=False), source_cache)[0])
        median = {k: statistics.median(v) if v else None for k, v in samples.items()}
        figures.append(
            Figures(
                name=name,
                floor_label=floor_label,
                init=median["init"] or 0.0,
                floor=median["floor"] or 0.0,
                stack_label=stack_label,
                stack=median["stack"],
                unvalidated=median["unvalidated"],
                boto3=median["boto3"],
                source=median["source"] or 0.0,
                request=request.label if request else None,
                first=median["first"],
                first_floor=median["ff"],
                calls=len(request.calls) if request else 0,
                memory=int(statistics.median(memory)),
            )
        )
    return figures


def record_requests(provider_url: str) -> dict[str, Request]:
    """Each function's representative first request, run once against moto from a cold state
    (no cached client, setting, secret or connector), with the AWS calls it made recorded."""
    from bench import moto_calls

    def body(stack: Any, calls: moto_calls.Calls) -> dict[str, Request]:
        from devstack.apigw import http_event
        from devstack.handlers import load
        from devstack.lambda_context import LambdaContext
        from devstack.sqs import sqs_event, sqs_record

        os.environ["TWILIO_API_URL"] = provider_url
        moto_calls.forget_caches()
        connector = moto_calls.create_connector(3)
        claims = {"tenant_id": "t"}
        alert = "Temperature above 30 C in room 4 of building B (sensor 17); check the cooling unit."
        actions = [
            sqs_record({"connectorId": connector, "message": f"{alert} ({i})", "actionId": f"first-{i}"})
            for i in range(10)
        ]
        requests = {
            "ConnectorsFunction": Request("GET /connectors", http_event("GET", "/connectors", claims=claims)),
            "DocsFunction": Request("GET /swagger", http_event("GET", "/swagger")),
            "PageFunction": Request("GET /", http_event("GET", "/", route="/")),
            "PreviewFunction": Request(
                "POST /preview",
                http_event("POST", "/preview", body={"message": alert, "provider": "twilio"}, claims=claims),
            ),
            "SendApiFunction": Request(
                "POST /connectors/{id}/test, 3 recipients",
                http_event("POST", f"/connectors/{connector}/test", body={}, claims=claims),
            ),
            "StatsFunction": Request(
                "GET /connectors/{id}/stats", http_event("GET", f"/connectors/{connector}/stats", claims=claims)
            ),
            "SenderFunction": Request("10 actions x 3 recipients", sqs_event(*actions)),
            "SweepFunction": Request("the 5-minute sweep, nothing due", {"source": "aws.events"}),
        }
        for name, request in requests.items():
            moto_calls.forget_caches()
            with moto_calls.recording(calls) as recorded, _provider_answers() as answers:
                answer = load(name)(request.event, LambdaContext(name, 60))
            status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
            assert status == request.status, (name, answer)
            request.calls, request.provider = recorded, answers
        return requests

    result: dict[str, Request] = moto_calls.in_moto(body)
    return result


@contextmanager
def _provider_answers() -> Iterator[list[dict[str, Any]]]:
    """Record the answers of every provider call made inside."""
    from sms_connector.providers import base, elks46, telnyx, twilio

    answers: list[dict[str, Any]] = []
    real = base.request

    def request(method: str, url: str, **kwargs: Any) -> Any:
        response = real(method, url, **kwargs)
        answers.append({"status": response.status, "headers": dict(response.headers), "body": response.data.decode()})
        return response

    modules = (base, elks46, telnyx, twilio)
    for module in modules:
        module.request = request  # type: ignore[attr-defined]
    try:
        yield answers
    finally:
        for module in modules:
            module.request = real  # type: ignore[attr-defined]


def build_layer() -> tuple[Path, str]:
    """The layer as `sam build` makes it (layers/shared/Makefile: python3.12 wheels for arm64,
    our package, the bytecode of both); answers its `python` folder, and the interpreter that
    compiled it (a 3.12 when one is found, as `make build` finds it; else this one: the sizes
    of its bytecode are close)."""
    found = subprocess.run([str(ROOT / "scripts" / "python312.sh")], capture_output=True, text=True, check=False)
    python = f"{found.stdout.strip()}/python3.12" if found.returncode == 0 else PY
    out = BUILD / "layer"
    shutil.rmtree(out, ignore_errors=True)
    make = shutil.which("make") or "make"
    target = ["build-SharedLayer", f"ARTIFACTS_DIR={out}", f"PYTHON={python}"]
    subprocess.run([make, "--no-print-directory", "-C", str(LAYER), *target], check=True, stdout=subprocess.DEVNULL)
    return out / "python", python

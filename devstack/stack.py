"""The whole service on one machine: moto, the HTTP API, the queue pollers, the simulators."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import auth, resources, template
from .api_server import ApiServer
from .handlers import load
from .pollers import QueuePoller, Schedule
from .simulators import ProviderSimulator

REGION = "eu-north-1"
DEMO_TENANT = "demo"
DEMO_EMAIL_FROM = "alerts@example.com"
# Credentials the simulators accept (the demo connectors use them; so can yours).
DEMO_CREDENTIALS = {
    "46elks": {"username": "demo-user", "password": "demo-password"},
    "telnyx": {"apiKey": "KEY_demo"},
    "twilio": {"accountSid": "AC" + "0" * 32, "authToken": "demo-token"},
}


class PortBusy(Exception):
    def __init__(self, what: str, port: int) -> None:
        super().__init__(f"port {port} ({what}) is already in use: stop what holds it, or choose another port")
        self.port = port


@dataclass
class Ports:
    api: int = 3000
    moto: int = 5050
    simulators: int = 4010


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    retry_delay: int | None = 10  # seconds before a failed record comes back (Lambda: the visibility timeout)
    seed: bool = True
    state_file: Path = template.ROOT / ".devstack" / "state.json"
    host: str = "127.0.0.1"
    schedule_seconds: float = 30.0  # how often scheduled functions run locally (AWS: their own rate)

    def __post_init__(self) -> None:
        self.pollers: list[QueuePoller] = []
        self.schedules: list[Schedule] = []
        self.moto: Any = None
        self.api: ApiServer | None = None
        self.simulators: ProviderSimulator | None = None
        self.state: dict[str, Any] = {}

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        for what, port in (
            ("HTTP API", self.ports.api),
            ("moto", self.ports.moto),
            ("provider simulators", self.ports.simulators),
        ):
            _check_free(self.host, port, what)
        from moto.server import ThreadedMotoServer

        self.moto = ThreadedMotoServer(ip_address=self.host, port=self.ports.moto, verbose=False)
        self.moto.start()
        moto_host, moto_port = self.moto.get_host_and_port()
        moto_url = f"http://{moto_host}:{moto_port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": moto_url,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)

        stack = resources.create(
            REGION,
            resources.default_parameters({"JwtIssuer": auth.ISSUER, "JwtAudience": auth.AUDIENCE}),
            table_name="sms-connector-local",
        )
        self.simulators = ProviderSimulator(self.host, self.ports.simulators).start()
        elks = DEMO_CREDENTIALS["46elks"]
        self.simulators.add_elks46_account(elks["username"], elks["password"])
        self.simulators.add_telnyx_key(DEMO_CREDENTIALS["telnyx"]["apiKey"])
        twilio = DEMO_CREDENTIALS["twilio"]
        self.simulators.add_twilio_account(twilio["accountSid"], twilio["authToken"])

        environment: dict[str, str] = {}
        for name in template.functions():
            environment |= stack.environment(name)
        environment |= {
            "ELKS46_API_URL": self.simulators.url,
            "TELNYX_API_URL": self.simulators.url,
            "TWILIO_API_URL": self.simulators.url,
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines are for CloudWatch; locally they are noise
            "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        os.environ.update(environment)
        from sms_connector import aws, config

        aws.reset()
        config.reset()

        handlers = {name: load(name) for name in template.functions()}
        key = auth.signing_key()
        self.api = ApiServer(
            handlers,
            auth.Authorizer(key),
            host=self.host,
            port=self.ports.api,
            extra={"/_local/emails": sent_emails, "/_local/sms": self._sms},
        ).start()
        # The receipt routes are served by this same local API: the providers post there.
        os.environ["PUBLIC_API_URL"] = self.api.url
        config.reset()
        for fn in template.functions().values():
            if fn.schedules:
                self.schedules.append(Schedule(handlers[fn.name], fn, self.schedule_seconds).start())
            for source in fn.queues:
                poller = QueuePoller(
                    resources.queue_of(stack, source),
                    handlers[fn.name],
                    function_name=fn.name,
                    timeout_seconds=fn.timeout,
                    batch_size=int(source.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in source.get("FunctionResponseTypes", []),
                    retry_delay=self.retry_delay,
                )
                self.pollers.append(poller.start())

        import boto3

        boto3.client("sesv2").create_email_identity(EmailIdentity=DEMO_EMAIL_FROM)
        token = auth.mint(DEMO_TENANT, key=key)
        self.state = {
            "apiUrl": self.api.url,
            "swaggerUrl": f"{self.api.url}/swagger",
            "motoUrl": moto_url,
            "simulatorUrl": self.simulators.url,
            "sendQueueUrl": stack.refs["SendQueue"],
            "sendDeadLetterQueueUrl": stack.refs["SendDeadLetterQueue"],
            "fallbackDeadLetterQueueUrl": stack.refs["FallbackDeadLetterQueue"],
            "tableName": stack.refs["Table"],
            "region": REGION,
            "tenant": DEMO_TENANT,
            "token": token,
            "demoConnectors": self._seed(token) if self.seed else {},
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state, indent=2))
        return self.state

    def stop(self) -> None:
        for schedule in self.schedules:
            schedule.stop()
        for poller in self.pollers:
            poller.stop()
        if self.api:
            self.api.stop()
        if self.simulators:
            self.simulators.stop()
        if self.moto:
            self.moto.stop()

    # --- helpers ----------------------------------------------------------------------

    def _sms(self) -> dict[str, Any]:
        assert self.simulators
        return {
            "messages": [
                {
                    "provider": r.provider,
                    "id": r.message_id,
                    "from": r.fields.get("from"),
                    "to": r.fields.get("to"),
                    "text": r.fields.get("text"),
                }
                for r in self.simulators.sent()
            ]
        }

    def _seed(self, token: str) -> dict[str, str]:
        """An email connector and one SMS connector per provider, for the demo tenant."""
        import urllib3

        assert self.api
        api_url = self.api.url
        http = urllib3.PoolManager(timeout=10)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def create(body: dict[str, Any]) -> str:
            answer = http.request("POST", f"{api_url}/connectors", body=json.dumps(body), headers=headers)
            if answer.status != 201:
                raise RuntimeError(f"seeding failed: {answer.status} {answer.data[:300]!r}")
            return str(json.loads(answer.data)["id"])

        created = {"email": create({"type": "email", "name": "Demo alerts mail", "from": DEMO_EMAIL_FROM})}
        senders = {"46elks": "DemoCo", "telnyx": "+46700000100", "twilio": "+46700000200"}
        for provider, sender in senders.items():
            created[provider] = create(
                {
                    "type": "sms",
                    "name": f"Demo {provider}",
                    "provider": provider,
                    "credentials": DEMO_CREDENTIALS[provider],
                    "from": sender,
                    "recipients": [
                        {"to": "+46710000001", "backupEmail": "oncall@example.com"},
                        {"to": "+46700000002", "backupEmail": "opted-out@example.com"},  # the simulators: opted out
                    ],
                }
            )
        return created


def sent_emails() -> dict[str, Any]:
    """The emails SES (moto) accepted, newest last."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    messages = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    return {
        "emails": [
            {"from": m.source, "to": m.destinations.get("ToAddresses", []), "subject": m.subject, "body": m.body}
            for m in messages
        ]
    }


def _check_free(host: str, port: int, what: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortBusy(what, port) from None
            raise


logging.getLogger("werkzeug").setLevel(logging.ERROR)

"""The whole service on one machine: moto, the HTTP API, the queue pollers, the simulators."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import auth, instances, resources, template
from .api_server import ApiServer
from .handlers import load, mount_layers
from .pollers import QueuePoller, Schedule
from .simulators import ProviderSimulator

REGION = "eu-north-1"
LOCAL_OVERRIDES = ("TEST_SENDS_PER_HOUR", "PROVIDER_READ_TIMEOUT", "RECEIPT_DEADLINE_MINUTES", "SEND_CONCURRENCY")
DEMO_TENANT = "demo"
# The template's EmailIdentity parameter, locally: a domain, so any address @example.com sends.
LOCAL_EMAIL_IDENTITY = "example.com"
DEMO_EMAIL_FROM = "alerts@example.com"
# Credentials the simulators accept (the demo connectors use them; so can yours).
DEMO_CREDENTIALS = {
    "46elks": {"username": "demo-user", "password": "demo-password"},
    "telnyx": {"apiKey": "KEY_demo"},
    "twilio": {"accountSid": "AC" + "0" * 32, "authToken": "demo-token"},
}


# The other ports follow the API port (3000 -> moto 5050, simulators 4010), or are any free
# ones when those are taken: a second stack needs nothing but another API port.
MOTO_OFFSET = 2050
SIMULATORS_OFFSET = 1010


class PortBusy(Exception):
    """Ports that were asked for explicitly and are taken: all of them, at once."""

    def __init__(self, busy: list[tuple[str, int]]) -> None:
        self.busy = busy  # (what, port): what is "api", "moto" or "simulators"
        super().__init__(", ".join(f"port {port} ({what}) is already in use" for what, port in busy))


@dataclass
class Ports:
    api: int = 3000
    moto: int | None = None  # None: follows the API port, or any free port when that one is taken
    simulators: int | None = None

    def choose(self, host: str = "127.0.0.1") -> Ports:
        """Every port at once: the ones asked for must be free, the others follow or are found free."""
        busy = [("api", self.api)] if not port_free(host, self.api) else []
        chosen = Ports(self.api)
        for what, asked, offset in (
            ("moto", self.moto, MOTO_OFFSET),
            ("simulators", self.simulators, SIMULATORS_OFFSET),
        ):
            if asked is None:
                follower = self.api + offset if self.api else 0
                port = follower if 0 < follower < 65536 and port_free(host, follower) else 0
            else:
                port = asked
                if not port_free(host, asked):
                    busy.append((what, asked))
            setattr(chosen, what, port)
        if busy:
            raise PortBusy(busy)
        return chosen


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    retry_delay: int | None = 10  # seconds before a failed record comes back (Lambda: the visibility timeout)
    seed: bool = True
    state_file: Path | None = None  # default: .devstack/state-<API port>.json
    host: str = "127.0.0.1"
    schedule_seconds: float = 30.0  # how often scheduled functions run locally (AWS: their own rate)

    def __post_init__(self) -> None:
        self.pollers: list[QueuePoller] = []
        self.schedules: list[Schedule] = []
        self._stopping = threading.Event()
        self.moto: Any = None
        self.api: ApiServer | None = None
        self.simulators: ProviderSimulator | None = None
        self.state: dict[str, Any] = {}
        self._dead_letter_queues: dict[str, str] = {}

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        ports = self.ports.choose(self.host)
        with _taken_means_busy("moto", ports.moto):
            self.moto = _start_moto(self.host, ports.moto or 0)
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

        parameters = resources.default_parameters(
            {"JwtIssuer": auth.ISSUER, "JwtAudience": auth.AUDIENCE, "EmailIdentity": LOCAL_EMAIL_IDENTITY}
        )
        stack = resources.create(REGION, parameters, table_name="sms-connector-local")
        with _taken_means_busy("simulators", ports.simulators):
            self.simulators = ProviderSimulator(self.host, ports.simulators or 0).start()
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
        # Settings a developer (or a test) may set in the environment of `make run` itself.
        environment |= {name: os.environ[name] for name in LOCAL_OVERRIDES if name in os.environ}
        os.environ.update(environment)
        mount_layers()
        from sms_connector import aws, config

        aws.reset()
        config.reset()

        handlers = {name: load(name) for name in template.functions()}
        key = auth.signing_key()
        with _taken_means_busy("api", ports.api):
            self.api = ApiServer(
                handlers,
                auth.Authorizer(key),
                host=self.host,
                port=ports.api,
                extra={
                    "/_local/emails": sent_emails,
                    "/_local/sms": self._sms,
                    "/_local/dlq": self._dead_letters,
                    "POST /_local/reset": self._reset,
                },
            ).start()
        # The receipt routes are served by this same local API: the providers post there.
        os.environ["PUBLIC_API_URL"] = self.api.url
        config.reset()
        self._housekeeping = threading.Thread(target=self._forget_table_copies, name="moto-memory", daemon=True)
        self._housekeeping.start()
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

        # What the template lets the fallback function send from, verified (in AWS: by you).
        boto3.client("sesv2").create_email_identity(EmailIdentity=parameters["EmailIdentity"])
        self._dead_letter_queues = {
            name: stack.refs[name] for name in template.dead_letter_queues() if name in stack.refs
        }
        token = auth.mint(DEMO_TENANT, key=key)
        api_port = int(self.api.url.rsplit(":", 1)[1])
        self.state = {
            "pid": os.getpid(),
            "ports": {"api": api_port, "moto": moto_port, "simulators": int(self.simulators.url.rsplit(":", 1)[1])},
            "apiUrl": self.api.url,
            "swaggerUrl": f"{self.api.url}/swagger",
            "motoUrl": moto_url,
            "simulatorUrl": self.simulators.url,
            "sendQueueUrl": stack.refs["SendQueue"],
            "sendDeadLetterQueueUrl": stack.refs["SendDeadLetterQueue"],
            "fallbackQueueUrl": stack.refs["FallbackQueue"],
            "fallbackDeadLetterQueueUrl": stack.refs["FallbackDeadLetterQueue"],
            "tableName": stack.refs["Table"],
            "region": REGION,
            "emailIdentity": parameters["EmailIdentity"],
            "tenant": DEMO_TENANT,
            "token": token,
            "demoConnectors": self._seed(token) if self.seed else {},
        }
        self.state_file = self.state_file or instances.state_path(api_port)
        instances.write(self.state_file, self.state)
        return self.state

    def _forget_table_copies(self) -> None:
        while not self._stopping.wait(10):
            resources.forget_table_copies()

    def stop(self) -> None:
        """Stop everything; each part gives up within seconds (a poller mid-invocation is left behind)."""
        if self.state_file and self.state:
            instances.remove(self.state_file, pid=os.getpid())
        self._stopping.set()
        for schedule in self.schedules:
            schedule.stop()
        for poller in self.pollers:
            poller.stop_soon()
        if self.api:
            self.api.stop()
        if self.simulators:
            self.simulators.stop()
        if self.moto:
            self.moto.stop()
            if self.moto._server:  # moto's stop() leaves the socket open until the process exits
                self.moto._server.server_close()
        for poller in self.pollers:
            poller.stop(timeout=2)

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

    def _dead_letters(self) -> dict[str, Any]:
        """What the dead-letter queues hold, peeked at: the messages stay where they are."""
        import boto3

        sqs = boto3.client("sqs")
        queues = {}
        for name, url in self._dead_letter_queues.items():
            seen: dict[str, dict[str, Any]] = {}
            handles = []
            for _ in range(10):  # at most 100 messages: hidden for a moment while read, then shown again
                got = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"]
                ).get("Messages", [])
                if not got:
                    break
                for m in got:
                    handles.append(m["ReceiptHandle"])
                    seen[m["MessageId"]] = {
                        "messageId": m["MessageId"],
                        "body": m["Body"],
                        "receiveCount": int(m["Attributes"].get("ApproximateReceiveCount", 0)),
                        "sentAt": int(m["Attributes"].get("SentTimestamp", 0)) / 1000,
                    }
            for i in range(0, len(handles), 10):
                sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                        for n, h in enumerate(handles[i : i + 10])
                    ],
                )
            queues[name] = {"url": url, "count": len(seen), "messages": list(seen.values())}
        return {"queues": queues}

    def _reset(self) -> dict[str, Any]:
        """Forget the SMS the simulators received and the emails SES sent (nothing else changes)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        assert self.simulators
        sms = len(self._sms()["messages"])
        clear = getattr(self.simulators, "clear", None) or self.simulators.reset
        clear()
        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        emails = len(sent)
        sent.clear()
        return {"cleared": {"sms": sms, "emails": emails}}

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
        assert self.simulators
        for provider, sender in senders.items():
            body: dict[str, Any] = {
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
            if provider == "telnyx":  # delivery receipts, signed with the simulator's key
                body["webhookPublicKey"] = self.simulators.telnyx_public_key
            created[provider] = create(body)
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


@contextlib.contextmanager
def _taken_means_busy(what: str, port: int | None) -> Iterator[None]:
    """A port taken between the check and the bind is reported like one taken before."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and port:
            raise PortBusy([(what, port)]) from None
        raise


def _start_moto(host: str, port: int) -> Any:
    """moto's ThreadedMotoServer, but a failed bind raises here instead of hanging start()."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    failures: list[BaseException] = []
    entry = server._server_entry

    def guarded() -> None:
        try:
            entry()
        except BaseException as exc:
            failures.append(exc)
            server._server_ready_event.set()

    server._server_entry = guarded  # type: ignore[method-assign]
    server.start()
    if failures:
        server._server = None
        if isinstance(failures[0], SystemExit):  # werkzeug's answer to a port in use: print, sys.exit(1)
            raise OSError(errno.EADDRINUSE, "address in use")
        raise failures[0]
    return server


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on `port` now (0, any free port, always can)."""
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


logging.getLogger("werkzeug").setLevel(logging.ERROR)

"""The provider simulator in a process of its own (so a benchmark's CPU time is the client's)."""

from __future__ import annotations

import threading

from devstack.simulators import ProviderSimulator


def main() -> None:
    simulator = ProviderSimulator().start()
    simulator.add_twilio_account("AC" + "2" * 32, "bench-token")
    print(simulator.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

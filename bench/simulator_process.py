"""The provider simulator in a process of its own (so a benchmark's CPU time is the client's):
`python -m bench.simulator_process [latency seconds]` prints its URL, then serves until killed."""

from __future__ import annotations

import sys
import threading

from devstack.simulators import ProviderSimulator


def main() -> None:
    simulator = ProviderSimulator().start()
    simulator.add_twilio_account("AC" + "2" * 32, "bench-token")
    simulator.latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    print(simulator.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

"""The chaos run's stack: the store and Dataverse run apart, so that only the worker dies.

The store simulator (`python -m local.bigcommerce`) and the Dataverse stand-in (`python -m
local.dataverse`, its rows in SQLite, posting its changes to the broker's `dataverse-events` as
a service endpoint) are processes of their own, as the real services are. The function host
(`python -m local.host`) is pointed at them as at real services and can be SIGKILLed and
started again on the same state directory and port; the broker file and the state store are in
that directory, so the new host goes on where the old one died. Every host's output goes to
`host.log`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from local.chaos.profile import Profile
from local.demo.stack import new_demo_token
from local.stack.host_process import HostProcess, free_port
from local.stack.plan import LOCAL_STORE_HASH
from local.stack.service_processes import SimulatorProcess, StandinProcess

STORE = LOCAL_STORE_HASH


@dataclass
class ChaosStack:
    state_dir: Path
    demo_token: str  # the driver's own Dataverse identity
    env: dict[str, str]  # the host's settings, also what `python -m cli` runs with
    simulator: SimulatorProcess
    dataverse: StandinProcess
    host: HostProcess
    log: TextIO

    @property
    def log_path(self) -> Path:
        return self.state_dir / "host.log"

    def kill(self) -> None:
        """SIGKILL the host (the worker); the store and Dataverse carry on."""
        self.host.kill()

    def restart(self) -> None:
        self.host = HostProcess.started(self.state_dir, self.env, self.log)

    def stop(self) -> None:
        try:
            if self.host.process.poll() is None:
                self.host.stop()
        finally:
            self.simulator.stop()
            self.dataverse.stop()
            self.log.close()


def start(state_dir: Path, profile: Profile, *, flow_file: Path, mapping_file: Path) -> ChaosStack:
    secrets = {
        "access_token": new_demo_token(),
        "webhook_secret": new_demo_token(),
        "client_secret": new_demo_token(),
        "dataverse_token": new_demo_token(),
    }
    path = state_dir / "stack-secrets.json"  # where HostProcess.secrets() reads them
    path.write_text(json.dumps(secrets))
    path.chmod(0o600)
    demo_token = new_demo_token()
    simulator = SimulatorProcess(
        {STORE: secrets["access_token"]},
        quota=profile.store_quota,
        client_secrets={STORE: secrets["client_secret"]},
    ).wait_ready()
    try:
        broker = state_dir / "broker.sqlite3"
        dataverse = StandinProcess(
            token=secrets["dataverse_token"],
            settings={
                "LOCAL_DATAVERSE_DB": str(state_dir / "dataverse.sqlite3"),
                "LOCAL_DATAVERSE_EXTRA_TOKENS": demo_token,
                "LOCAL_DATAVERSE_SERVICE_ENDPOINT": str(broker),
                **profile.dataverse_settings(),
            },
        ).wait_ready()
    except BaseException:
        simulator.stop()
        raise
    prefix = f"BIGCOMMERCE_{STORE.upper()}_"
    env = {
        "LOCAL_STATE_DIR": str(state_dir),
        "LOCAL_BROKER_PATH": str(broker),
        "LOCAL_FUNCTIONS_PORT": str(free_port()),
        # HostProcess reads the stand-ins' ports from these (it starts neither).
        "LOCAL_BIGCOMMERCE_PORT": str(simulator.port),
        "LOCAL_DATAVERSE_PORT": str(dataverse.port),
        "BIGCOMMERCE_STORES": STORE,
        "BIGCOMMERCE_API_URL": simulator.url,
        prefix + "ACCESS_TOKEN": secrets["access_token"],
        prefix + "WEBHOOK_SECRET": secrets["webhook_secret"],
        prefix + "CLIENT_SECRET": secrets["client_secret"],
        "DATAVERSE_URL": dataverse.url,
        "LOCAL_DATAVERSE_TOKEN": secrets["dataverse_token"],
        "DATAVERSE_CHANGE_SOURCE": "service_endpoint",
        "SERVICEBUS_TRANSPORT": "local",
        "STATE_TRANSPORT": "local",
        "CONNECTOR_FLOW_FILE": str(flow_file),
        "CONNECTOR_MAPPING_FILE": str(mapping_file),
        **profile.host_settings(),
    }
    log = (state_dir / "host.log").open("a")
    try:
        host = HostProcess.started(state_dir, env, log)
    except BaseException:
        log.close()
        simulator.stop()
        dataverse.stop()
        raise
    return ChaosStack(state_dir, demo_token, env, simulator, dataverse, host, log)

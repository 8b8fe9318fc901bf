"""The stand-ins as processes of their own, outside any function host.

    simulator = SimulatorProcess({"store1": token}, quota="450/30").wait_ready()
    dataverse = StandinProcess(token="...", settings={"LOCAL_DATAVERSE_DB": path}).wait_ready()

Each runs `python -m local.bigcommerce|local.dataverse --port P` from a clean environment (no
connector setting of this process leaks in: `clean_environ()`) plus its own settings, is ready
once its health endpoint answers, and stops with SIGINT (SIGKILL if it hangs). Run apart, they
outlive a function host that is killed and restarted, as a real store and a real Dataverse do;
the ones a host starts itself die with it. End-to-end tests and the chaos run use them.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import Self

import httpx

from local.stack.host_process import clean_environ, free_port
from local.stack.module_process import ModuleProcess


class ServiceProcess(ModuleProcess):
    """A stand-in's process on a loopback port, ready when `health_path` answers 200."""

    name = "the service"
    health_path = "/"

    def __init__(self, module: str, port: int | None, env: Mapping[str, str]) -> None:
        self.port = port or free_port()
        self.env = {**clean_environ(), "PYTHONUNBUFFERED": "1", **env}
        super().__init__(module, ["--port", str(self.port)], self.env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self, response: httpx.Response) -> bool:
        return response.status_code == 200

    def wait_ready(self, timeout: float = 30) -> Self:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    time.sleep(0.1)  # let the drain thread read the last lines
                    raise self.failure(f"{self.name} exited with {self.process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if self.healthy(client.get(self.health_path)):
                        return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise self.failure(f"{self.name} did not answer in {timeout:.0f}s")
                time.sleep(0.05)

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class SimulatorProcess(ServiceProcess):
    """`python -m local.bigcommerce`: the stores of `stores` (hash: access token), each with its
    client secret (`client_secrets`, default `client-secret-<hash>`) for signing webhooks."""

    name = "the simulator"
    health_path = "/_simulator/health"

    def __init__(
        self,
        stores: Mapping[str, str],
        *,
        quota: str = "150/30",
        latency_ms: str = "0",
        port: int | None = None,
        client_secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.stores = dict(stores)
        env = {
            "BIGCOMMERCE_STORES": ",".join(self.stores),
            "LOCAL_BIGCOMMERCE_QUOTA": quota,
            "LOCAL_BIGCOMMERCE_LATENCY_MS": latency_ms,
        }
        for store_hash, token in self.stores.items():
            env[f"BIGCOMMERCE_{store_hash.upper()}_ACCESS_TOKEN"] = token
            secret = (client_secrets or {}).get(store_hash, f"client-secret-{store_hash}")
            env[f"BIGCOMMERCE_{store_hash.upper()}_CLIENT_SECRET"] = secret
        super().__init__("local.bigcommerce", port, env)

    def healthy(self, response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        if sorted(response.json()["stores"]) != sorted(self.stores):
            raise RuntimeError(f"the simulator serves {response.json()['stores']}")
        return True


class StandinProcess(ServiceProcess):
    """`python -m local.dataverse` accepting `token` (identity-1), provisioned or not, with any
    `LOCAL_DATAVERSE_*` settings; without `LOCAL_DATAVERSE_DB` its database is in memory."""

    name = "the Dataverse stand-in"
    health_path = "/_standin/health"

    def __init__(
        self,
        *,
        token: str,
        provisioned: bool = True,
        settings: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.token = token
        env = {
            "LOCAL_DATAVERSE_TOKEN": token,
            "LOCAL_DATAVERSE_PROVISIONED": "1" if provisioned else "0",
            **(settings or {}),
        }
        super().__init__("local.dataverse", port, env)

    def healthy(self, response: httpx.Response) -> bool:
        return response.status_code == 200 and response.json().get("status") == "ok"

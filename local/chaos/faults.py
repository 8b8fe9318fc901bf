"""Switching the stand-ins' random faults on, and counting every fault the run injected.

The counts come from where each fault happened: the stand-ins' chaos counters (`GET /__sim/chaos`),
the store's delivery counters (`GET /__sim/webhooks`: copies, deliveries sent out of turn,
deliveries dropped), the killer, and the
host's log, where the worker says when it could not settle a message because its lock had
expired (the broker has redelivered it by then, or will).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local.chaos.killer import Killer
from local.chaos.profile import Profile
from local.demo.stack import Stack

BIGCOMMERCE_5XX = ("500", "502", "503", "504")


async def switch_on(stack: Stack, profile: Profile, seed: int) -> None:
    for http, body in (
        (stack.sim, profile.bigcommerce_chaos(seed)),
        (stack.dataverse_admin, profile.dataverse_chaos(seed)),
    ):
        (await http.put("/__sim/chaos", json=body)).raise_for_status()


async def counted(stack: Stack, killer: Killer, log_path: Path) -> dict[str, Any]:
    """`faults`: a count per kind; `detail`: the stand-ins' own counts by kind, and every
    delivery attempt by outcome (those that failed while the worker was down are there)."""
    bigcommerce = (await stack.sim.get("/__sim/chaos")).json()["injected"]
    dataverse = (await stack.dataverse_admin.get("/__sim/chaos")).json()["injected"]
    webhooks = (await stack.sim.get("/__sim/webhooks")).json()["counts"]
    faults = {
        "dataverse_429": dataverse.get("429", 0),
        "dataverse_503": dataverse.get("503", 0),
        "dataverse_timeout": dataverse.get("timeout", 0),
        "bigcommerce_429": bigcommerce.get("429", 0),
        "bigcommerce_5xx": sum(bigcommerce.get(k, 0) for k in BIGCOMMERCE_5XX),
        "bigcommerce_slow": bigcommerce.get("slow", 0),
        "webhook_duplicates": webhooks.get("duplicate", 0),
        "webhook_out_of_order": webhooks.get("reordered", 0),
        "webhook_dropped": webhooks.get("dropped", 0),
        "worker_kills": killer.kills,
        "lock_expired_mid_run": lock_expiries(log_path),
    }
    detail = {"bigcommerce": bigcommerce, "dataverse": dataverse, "webhooks": webhooks}
    return {"faults": faults, "detail": detail}


def lock_expiries(log_path: Path) -> int:
    """Runs that finished after their message's lock had expired: the worker could not settle
    the message (`lock_lost`, local/host/queue_pump.py), which the broker redelivers."""
    with log_path.open(errors="replace") as lines:
        return sum(1 for line in lines if '"lock_lost":true' in line)

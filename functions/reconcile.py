"""The reconciliation sweep's timer (`RECONCILE_SCHEDULE`, six-field NCRONTAB, every 5 minutes
by default).

It runs shared/handlers/reconcile.py: every store swept against Dataverse under its lease, the
missing and stale orders enqueued, then the store's webhooks checked. Not run on start-up (every
deployment and scale-out would sweep at once; the lease would skip them, but for nothing).
`use_monitor=True`: a sweep is worth making up after the app was down (the schedule monitor
records the last run in storage, so a missed occurrence runs at start-up), and the watermarks
make that catch-up read only what changed. A failed store fails the invocation, after every
store was tried, so that it shows in the monitoring.
"""

import azure.functions as func

from functions.invocation import invocation
from shared.bootstrap import container

bp = func.Blueprint()


@bp.timer_trigger(
    arg_name="timer",
    schedule="%RECONCILE_SCHEDULE%",
    run_on_startup=False,
    use_monitor=True,
)
async def reconcile(timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(context):
        await container().reconciler().run_all()

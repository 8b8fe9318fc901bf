"""The Dataverse change poll's timer (`DATAVERSE_POLL_SCHEDULE`, six-field NCRONTAB).

It runs shared/handlers/dataverse_poll.py, which does nothing when `DATAVERSE_CHANGE_SOURCE` is
`service_endpoint`. Not run on start-up: the first run only starts tracking, and a missed tick is
made up by the next one (the delta link remembers where the last one stopped), so the schedule
monitor's storage writes buy nothing (`use_monitor=False`). The Functions host never overlaps two
runs of one timer function, so polls never race for a checkpoint.
"""

import azure.functions as func

from functions.invocation import invocation
from shared.bootstrap import container

bp = func.Blueprint()


@bp.timer_trigger(
    arg_name="timer",
    schedule="%DATAVERSE_POLL_SCHEDULE%",
    run_on_startup=False,
    use_monitor=False,
)
async def dataverse_poll(timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(context):
        await container().dataverse_poll().run()

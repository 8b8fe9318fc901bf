"""The only FunctionApp: it validates the configuration and registers the blueprints.

Bad configuration raises here, at indexing: the app then serves nothing, so no webhook is
acknowledged and no queue message is consumed by a worker that could not process it.
"""

import azure.functions as func

from functions import dataverse_events, dataverse_poll, health, orders, reconcile, webhooks
from shared.bootstrap import startup

startup()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(webhooks.bp)
app.register_functions(orders.bp)
app.register_functions(dataverse_events.bp)
app.register_functions(dataverse_poll.bp)
app.register_functions(reconcile.bp)

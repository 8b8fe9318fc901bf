"""The production app plus a floor endpoint, served by one local host for the ingest benchmark.

The floor answers a bare 202 (no auth, no validation, no enqueue) from the same server, so the
benchmark can say what the ingress itself costs on top of the host.
"""

import azure.functions as func

from functions import health, webhooks
from shared.bootstrap import startup

startup()

floor = func.Blueprint()


@floor.route(route="bench/floor", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def bench_floor(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=202)


app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(webhooks.bp)
app.register_functions(floor)

"""POST /api/webhooks/bigcommerce: BigCommerce callbacks in, one Service Bus message out.

Every method is routed here so that a wrong one gets our 405 problem, not the host's bare 404.
"""

import azure.functions as func

from functions.http_responses import from_handler
from functions.invocation import invocation
from shared.bootstrap import container
from shared.handlers.webhook_ingress import IngressRequest

bp = func.Blueprint()


@bp.route(route="webhooks/bigcommerce", auth_level=func.AuthLevel.FUNCTION)
async def bigcommerce_webhook(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    request = IngressRequest(
        method=req.method,
        headers={k.lower(): v for k, v in req.headers.items()},
        body=req.get_body(),
    )
    with invocation(context):
        return from_handler(await container().webhook_ingress().handle(request))

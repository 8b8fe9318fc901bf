"""GET /api/health: the liveness probe (anonymous; it reveals no tenant data)."""

import azure.functions as func

from functions.http_responses import json_response
from shared.bootstrap import container
from shared.handlers.health import check_health

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(check_health(container().settings).as_dict())

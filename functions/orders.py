"""The order lifecycle: one Service Bus session per order on `order-events`.

Returning completes the message; raising abandons it for redelivery. The runner raises only when
it could not queue the follow-up (a retry or a park), so nothing is completed too early.

`store/hook/deliveryException` messages (family `hook`, session `<store>:hooks`) are not about
an order: they go to the store's webhook health check at once, which completes them whatever
its outcome (the reconciliation timer checks the hooks again anyway).
"""

import logging

import azure.functions as func

from functions.invocation import invocation
from shared.bootstrap import container
from shared.messaging.queues import ORDER_EVENTS
from shared.orchestration.runner import ReceivedMessage

bp = func.Blueprint()
log = logging.getLogger("functions.orders")

HOOK_FAMILY = "hook"


@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name=ORDER_EVENTS.name,
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
async def order_events(message: func.ServiceBusMessage, context: func.Context) -> None:
    properties = dict(message.application_properties or {})
    if properties.get("family") == HOOK_FAMILY:
        with invocation(context):
            await container().webhook_health().handle_notice(properties, message.get_body())
        return
    received = ReceivedMessage(
        body=message.get_body(),
        message_id=message.message_id or "",
        application_properties=properties,
        correlation_id=message.correlation_id,
        delivery_count=message.delivery_count or 1,
    )
    with invocation(context):
        report = await container().order_runner().handle(received)
    log.info("order message %s: %s", received.message_id, report.outcome)

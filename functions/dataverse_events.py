"""Dataverse's service endpoint messages (`dataverse-events`) in, order messages out.

A registered Service Bus service endpoint posts one `RemoteExecutionContext` (JSON) per step:
Create/Update of `msdyn_fulfillmentorder`, Update of `salesorder`. The handler forwards each into
its order's session on `order-events` (shared/handlers/dataverse_changes.py). No sessions here:
Dataverse sets none, and ordering per order is restored on `order-events`.

Returning completes the message, a skip (another table, a row without a BigCommerce order)
included. Raising abandons it for redelivery, and that is also what an unreadable body does, on
purpose: after `max_delivery_count` (10) deliveries Service Bus dead-letters it
(MaxDeliveryCountExceeded). Completing it instead would throw away the only record of a Dataverse
change, and in `service_endpoint` mode nothing else would pick the change up (the poll is off).
An unreadable body is a configuration or version problem (the endpoint's message format left at
.NET binary, a payload shape we do not know), so it is kept where an operator sees it
(`python -m cli queues peek-dlq dataverse-events`) and, once the cause is fixed, replays it
(`python -m cli queues replay dataverse-events`). A parse costs no I/O, so the nine extra
deliveries cost nothing; each logs the reason as an error.
"""

import azure.functions as func

from functions.invocation import invocation
from shared.bootstrap import container
from shared.messaging.queues import DATAVERSE_EVENTS

bp = func.Blueprint()


@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name=DATAVERSE_EVENTS.name,
    connection="ServiceBusConnection",
)
async def dataverse_events(message: func.ServiceBusMessage, context: func.Context) -> None:
    with invocation(context):
        await (
            container()
            .dataverse_changes()
            .receive(
                message.get_body(),
                message_id=message.message_id,
                content_type=message.content_type,
                properties=dict(message.application_properties or {}),
                delivery_count=message.delivery_count,
            )
        )

"""`make demo`: the whole order lifecycle on this machine, end to end, judged order by order.

1. The local stack starts on the embedded default (function host, local broker, BigCommerce
   store simulator, Dataverse stand-in) with the demo's flow (`flow.yaml`: stock that makes some
   orders split across two sources) and the default mapping with the store's currencies.
   Dataverse gets a product for every SKU the store sells but one (`seed.py`).
2. The store's webhooks are registered through the connector's own client; the simulator
   delivers some events twice and out of order. ORDERS orders are created in the store; some
   wait for payment, and stay held by their status.
3. The warehouse ships released fulfillment orders in Dataverse, some in part; the merchant
   cancels some orders in BigCommerce (before fulfillment, or after a partial shipment), one or
   two in Dataverse, and refunds some completed ones (`scenario.py`, `warehouse.py`,
   `merchant.py`). Every choice comes from the seed.
4. When the first wave has settled (`settle.py`), the operator creates the missing product and
   replays the parked orders (`python -m cli orders replay --all`); they go through.
5. When that has settled too, both sides are read and compared order by order and line by line
   (`judge.py`); the connector's API calls come from the stand-ins' request logs (`traffic.py`).
   The summary is printed, the JSON report written (`report.py`), and the exit code is 1 if
   anything was lost, duplicated or mismatched.
"""

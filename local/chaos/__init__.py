"""`make chaos`: the order lifecycle of `make demo`, 2,000 orders, with everything going wrong.

The demo's run (`local/demo/lifecycle.py`: the store's orders, the warehouse shipping in
Dataverse, the merchant cancelling and refunding, a held product fixed and replayed) on a stack
whose store and Dataverse run apart from the worker (`stack.py`), with these faults at once
(rates in `profile.py`, every draw from the seed):

- Dataverse answers ~10% of the connector's requests with 429 (Retry-After), 503 or a timeout
  (the answer comes after the client gave up; the write stands);
- BigCommerce answers ~5% of them with 429 (platform load) or 5xx (a 504 after the change was
  made), and a few so slowly that the step outlives its message lock, which expires mid-step:
  the broker redelivers the message while the first run still goes on;
- the store delivers 30% of webhooks twice, shuffles them, and drops ~3% for good: the
  reconciliation timer must find what they announced;
- the worker is SIGKILLed at random moments while it has work in flight, and started again
  (`killer.py`).

It settles when the webhooks are delivered, the work queues are empty (scheduled retries
included), the warehouse and merchant have nothing left to do, both sides stopped changing, and
a reconciliation sweep (`python -m cli reconcile`) finds nothing missing (`sweep.py`). Then
both sides are compared order by order (`local/demo/judge.py`) and `chaos-report.json` written:
`orders`, `faults` (a count per kind, `faults.py`), `lost`, `duplicate_records`,
`duplicate_shipments`, `duplicate_refunds`, `state_mismatches`, `parked_without_reason`, the
time taken and every figure the demo reports. It exits 1 unless it settled and all six counters
are 0 (`lost` included).
"""

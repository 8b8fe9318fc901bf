"""The order lifecycle: the steps that move one order between BigCommerce and Dataverse.

The runner (`runner.py`) takes one order message, loads what both sides hold for the order, and
runs the configured steps (`flow.py`, `default_flow.yaml`) in order. Steps are level-triggered:
each compares the two sides and writes only what is missing, so duplicated, late, reordered and
echoed messages converge on the same state with no extra writes.
"""

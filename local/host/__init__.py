"""A local Functions host: serves the same function app Azure runs, on this machine.

Azure Functions Core Tools is a downloaded .NET binary that cannot be installed here, so this
package does the part of its job the project needs: it indexes `function_app` the way the Python
worker does, serves HTTP triggers, pumps Service Bus queue triggers from a broker, and fires
timer triggers on their NCRONTAB schedules.
"""

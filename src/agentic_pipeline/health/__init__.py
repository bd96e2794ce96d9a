"""Health monitoring: the report, statistical stuck detection, recovery rules, alerts, metrics, HTTP."""

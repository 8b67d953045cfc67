"""What operators see of each request: request ids, the per-request record and middleware,
JSON request logs, optional OpenTelemetry traces, and the status board."""

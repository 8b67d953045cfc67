"""Side-by-side benchmark of the gateway against a fast fake upstream (run: `python -m bench`).

Three kinds of process, each started by the orchestrator (`bench.run`) and pinned to a core:
the fake upstream (`bench.upstream`), the gateway under test, and the load generator
(`bench.loadgen`). See docs/performance.md for the method.
"""

"""Triptych's load tests: the Locust workload, its load shapes and the side-by-side runner.

``python -m loadtest compare`` load-tests the gateways side by side and writes a report;
``python -m loadtest floor`` measures hello-world servers on each framework's own sockets.
The locustfile (``loadtest/locustfile.py``) also runs on its own under ``locust -f``.
"""

__all__: list[str] = []

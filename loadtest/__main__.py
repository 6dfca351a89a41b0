"""``python -m loadtest compare|floor|report``: see docs/loadtesting.md."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loadtest import runner


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    cmp = sub.add_parser("compare", help="load-test the implementations side by side")
    cmp.add_argument(
        "--targets", help="comma-separated: asyncio,trio,curio (default: all that import)"
    )
    size = cmp.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short run (under 2 minutes)")
    size.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds per target into a temp dir: proves the pipeline",
    )
    cmp.add_argument(
        "--shape",
        choices=("step", "constant"),
        default="step",
        help="shape of the saturation phases (default step)",
    )
    cmp.add_argument("--users", type=int, help="top user level (step) or users (constant)")
    cmp.add_argument(
        "--duration", type=float, help="seconds per saturation phase (split over the step levels)"
    )
    cmp.add_argument(
        "--external",
        action="append",
        metavar="NAME=URL",
        help="compare a gateway already running at URL (repeatable); nothing is started",
    )
    cmp.add_argument(
        "--admin-token", help="admin token of --external gateways (env TRIPTYCH_ADMIN_TOKEN)"
    )
    cmp.add_argument(
        "--upstream-url",
        help="the stub's URL as --external gateways see it (env TRIPTYCH_UPSTREAM_URL)",
    )
    cmp.add_argument(
        "--stub-url",
        help="the stub's URL as seen from here, for the direct reference (default: --upstream-url)",
    )
    cmp.add_argument("--workers", type=int, default=1, help="GATEWAY_WORKERS (default 1)")
    cmp.add_argument("--db-pool", type=int, default=10, help="GATEWAY_DB_POOL_SIZE (default 10)")
    cmp.add_argument(
        "--upstream-pool", type=int, default=20, help="GATEWAY_UPSTREAM_POOL_SIZE (default 20)"
    )
    cmp.add_argument("--out", help="report root (default reports/; --smoke: a temp dir)")
    cmp.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each phase, wait up to SECONDS for other work on the machine to stop",
    )

    floor = sub.add_parser("floor", help="hello-world h11 servers on each framework's sockets")
    floor.add_argument("--frameworks", help="comma-separated: asyncio,trio,curio (default all)")
    floor.add_argument("--quick", action="store_true", help="short run")
    floor.add_argument("--smoke", action="store_true", help="a few seconds per framework")
    floor.add_argument("--users", type=int, help="top user level")
    floor.add_argument("--duration", type=float, help="seconds per framework")
    floor.add_argument("--out", help="report root (default reports/)")
    floor.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each framework, wait up to SECONDS for other work on the machine to stop",
    )

    scale = sub.add_parser(
        "scaling", help="rate-limit over-admission with N processes; request-log write rate"
    )
    scale.add_argument("--impl", default="asyncio", help="implementation (default asyncio)")
    scale.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2, 4], help="GATEWAY_WORKERS values"
    )
    scale.add_argument("--limit", type=int, default=100, help="the key's limit per hour")
    scale.add_argument("--burst", type=int, default=400, help="requests in the burst")

    prof = sub.add_parser("profile", help="cProfile one gateway under proxied GETs, by package")
    prof.add_argument("--impl", default="asyncio", help="implementation (default asyncio)")
    prof.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    prof.add_argument("--threads", type=int, default=16, help="concurrent clients")

    rep = sub.add_parser("report", help="re-render a report from its summary.json")
    rep.add_argument("directory", help="a report directory (holding summary.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "compare":
        return runner.compare(runner.build_options(args))
    if args.command == "floor":
        from loadtest import floor

        return floor.main(args)
    if args.command == "profile":
        from loadtest import profile

        return profile.main(args)
    if args.command == "scaling":
        from loadtest import scaling

        return scaling.main(args)
    from loadtest import report

    return report.rerender(args.directory)


if __name__ == "__main__":
    sys.exit(main())

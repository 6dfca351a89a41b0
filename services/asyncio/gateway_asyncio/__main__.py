"""``python -m gateway_asyncio``: settings from the environment, then serve until SIGTERM."""

from gateway_core import launch

from ._service import serve


def main() -> None:
    """Start the asyncio gateway."""
    launch("asyncio", serve)


if __name__ == "__main__":
    main()

"""``python -m gateway_trio``: settings from the environment, then serve until SIGTERM."""

from gateway_core import launch

from ._service import serve


def main() -> None:
    """Start the Trio gateway."""
    launch("trio", serve)


if __name__ == "__main__":
    main()

"""``python -m gateway_curio``: settings from the environment, then serve until SIGTERM."""

from gateway_core import launch

from ._service import serve


def main() -> None:
    """Start the Curio gateway."""
    launch("curio", serve)


if __name__ == "__main__":
    main()

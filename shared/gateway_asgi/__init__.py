"""What the two hypercorn services share beyond the core: hypercorn's configuration and the
httpx upstream client. httpx and hypercorn each run on asyncio and on Trio (through anyio and
their own worker classes), so this code is the same for both; Curio has neither.
"""

from ._config import hypercorn_config
from ._httpx import HttpxUpstream

__all__ = ["HttpxUpstream", "hypercorn_config"]

"""The HTTP service: a thin Litestar shell over the engine.

`create_app(engine)` builds the application; `kinerja serve` runs it. Imported on
demand, so the CLI and the library start without loading the web framework.
"""

from kinerja_rules.server.app import create_app
from kinerja_rules.server.auth import ApiKey, KeyFileError, KeyRing, hash_key, new_key
from kinerja_rules.server.bodies import Limits
from kinerja_rules.server.service import PolicyService

__all__ = ["ApiKey", "KeyFileError", "KeyRing", "Limits", "PolicyService", "create_app", "hash_key", "new_key"]

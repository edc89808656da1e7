"""The keyword options of :class:`tessera_verify.Verifier`, for the
framework integrations that read them from their settings (Django's
``TESSERA`` dict, Flask's ``app.config["TESSERA_<NAME>"]``). PyO3 gives the
class its signature, so a new option reaches every integration by itself."""

from __future__ import annotations

import inspect
from typing import Tuple

from ._native import Verifier

#: The option names, in the signature's order.
VERIFIER_OPTIONS: Tuple[str, ...] = tuple(inspect.signature(Verifier).parameters)

"""The marker plugins use on their hook implementations: ``@agencystack.hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("agencystack")

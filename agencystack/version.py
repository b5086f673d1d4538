"""The core's version: what ``agencystack --version``, ``components list`` and backup manifests report (the package
re-exports it as ``agencystack.__version__``), and the plugin API's own version.

``PLUGIN_API_VERSION`` (semver) versions what plugins rely on -- the public names of :mod:`agencystack`, every hook
and every member of what a hook receives and returns (recorded in tests/data/plugin_api.json) -- independently of
the distribution: CHANGELOG.md's section "Plugin API" records each version. A minor version only adds or
deprecates (:mod:`agencystack.deprecations`); only a major version removes what was deprecated.
"""

__version__ = "0.1.0"
PLUGIN_API_VERSION = "1.2.0"

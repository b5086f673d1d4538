"""Loaded for every test directory -- tests/ and each component distribution's tests/ (components/*/tests) -- however
pytest is started: the real-engine test bed's fixtures (docker_client, images, engine, driver, ...)."""

pytest_plugins = ["tests.engine.fixtures"]

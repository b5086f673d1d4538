"""``settings.load`` validates the merged layers as pydantic-settings would: the same instance, the same errors,
and a model that changes how it is constructed (its own sources, an alias) still goes through pydantic-settings
(docs/performance.md: the direct validation is what a fleet's status saves per component)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from agencystack.errors import UsageError
from agencystack.settings import ComponentSettings, GlobalSettings, generated_secret, hex_token, load


class Plain(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="PLAIN_")

    port: int = Field(8000, ge=1, le=65535)
    title: str = "hi"
    token: generated_secret(hex_token, 8) = None


class Aliased(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="ALIASED_", populate_by_name=True)

    port: int = Field(8000, validation_alias="listen_port")


class OwnSources(ComponentSettings):
    """A model that adds a source of its own: constructing it must still ask that source."""

    model_config = SettingsConfigDict(env_prefix="OWN_")

    title: str = "hi"

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, env_settings: Any,
                                   dotenv_settings: Any, file_secret_settings: Any) -> tuple[Any, ...]:
        return (init_settings, lambda: {"title": "from its own source"})


@pytest.fixture
def global_settings(tmp_path):
    return GlobalSettings.load(root=tmp_path / "root", log_dir=tmp_path / "log")


def test_a_load_is_the_instance_pydantic_settings_builds_from_the_same_values(global_settings, tmp_path):
    env = tmp_path / ".env"
    env.write_text("PLAIN_TITLE=from-file\nPLAIN_TOKEN=0123456789abcdef\n")
    loaded = load(Plain, global_settings, env, {"PLAIN_PORT": "9000"}, client="acme")
    built = Plain.model_validate({"port": "9000", "title": "from-file", "token": "0123456789abcdef"})
    assert loaded.values == built
    assert loaded.values.model_fields_set == built.model_fields_set
    assert loaded.values.model_dump() == {"port": 9000, "title": "from-file", "token": built.token}
    assert loaded.sources == {"port": "flag", "title": "file", "token": "file"}


def test_a_bad_value_is_refused_as_pydantic_settings_refuses_it(global_settings, tmp_path):
    with pytest.raises(UsageError, match=r"invalid setting PLAIN_PORT: Input should be less than or equal to 65535"):
        load(Plain, global_settings, tmp_path / ".env", {"PLAIN_PORT": "70000"})
    with pytest.raises(ValidationError):  # the same check, asked of pydantic-settings
        Plain.model_validate({"port": "70000"})


def test_a_model_with_its_own_sources_or_aliases_is_still_built_by_pydantic_settings(global_settings, tmp_path):
    assert load(OwnSources, global_settings, tmp_path / ".env").values.title == "from its own source"
    assert load(Aliased, global_settings, tmp_path / ".env", {"ALIASED_PORT": "9001"}).values.port == 9001

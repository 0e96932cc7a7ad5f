"""`load_yaml_file`: every hand-written YAML file (scenario, ownership, CRM mapping) that is missing
or broken fails as one sentence naming the file, in the loader's own error class."""

import pytest

from integration_assets.contracts.ownership import OwnershipError, load_ownership
from integration_assets.sandbox.scenario import ScenarioError, load_scenario
from integration_assets.streams.crm_mapping import CrmMappingError, load_crm_mapping
from integration_assets.strict_yaml import load_yaml_file


class ConfigError(ValueError):
    pass


def test_a_file_is_read_as_yaml(tmp_path):
    file = tmp_path / "settings.yaml"
    file.write_text("version: 1\nnames: [a, b]\n")

    assert load_yaml_file(file, ConfigError, "settings") == {"version": 1, "names": ["a", "b"]}


def test_a_missing_file_and_broken_yaml_are_one_sentence_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [1\n")

    with pytest.raises(ConfigError, match=r"nowhere\.yaml: the settings file does not exist$"):
        load_yaml_file(missing, ConfigError, "settings")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML: "):
        load_yaml_file(broken, ConfigError, "settings")


@pytest.mark.parametrize(
    ("load", "error", "what"),
    [
        (load_scenario, ScenarioError, "scenario"),
        (load_ownership, OwnershipError, "ownership"),
        (load_crm_mapping, CrmMappingError, "CRM mapping"),
    ],
)
def test_each_loader_names_its_own_kind_of_file(tmp_path, load, error, what):
    with pytest.raises(error, match=f"missing.yaml: the {what} file does not exist$"):
        load(tmp_path / "missing.yaml")

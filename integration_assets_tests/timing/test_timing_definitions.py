"""contracts/timing.yaml and its strict loader: the packaged definitions are today's behaviour, and a
definition the loader does not understand fails naming the file, the key and what is allowed."""

import pytest
import yaml

from integration_assets.contracts.location import CONTRACTS_DIR_ENV, PACKAGED_DIR
from integration_assets.contracts.timing import TimingError, load_timing
from integration_assets.streams.timing import DEFAULT_TIMING, Timing
from integration_assets_tests.timing.stories import write_timing


def test_the_packaged_definitions_are_what_the_code_did_before_they_were_a_file():
    definitions = load_timing()
    assert definitions.timing == DEFAULT_TIMING
    assert Timing("created", "paid", "paid") == DEFAULT_TIMING
    assert definitions.version == 1
    assert definitions.revenue_recognised.owner.key == "finance"
    assert definitions.fulfilment_activated.owner.key == "warehouse_ops"
    assert definitions.as_metadata() == {
        "timing_version": 1,
        "timing/order_confirmed": "created",
        "timing/revenue_recognised": "paid",
        "timing/fulfilment_activated": "paid",
    }


def test_the_override_directory_changes_a_definition(tmp_path, monkeypatch):
    write_timing(tmp_path / "contracts", revenue_recognised="first_fulfilment")
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path / "contracts"))
    definitions = load_timing()
    assert definitions.source == tmp_path / "contracts" / "timing.yaml"
    assert definitions.timing == Timing("created", "first_fulfilment", "paid")


def test_an_unknown_moment_names_the_file_the_key_and_the_allowed_values(tmp_path):
    path = write_timing(tmp_path, revenue_recognised="shipped")
    with pytest.raises(TimingError) as error:
        load_timing(path)
    message = str(error.value)
    assert str(path) in message
    assert "definitions.revenue_recognised.moment" in message
    assert "'shipped'" in message and "paid, first_fulfilment, fulfilled" in message


def test_a_moment_allowed_for_another_definition_is_refused(tmp_path):
    # `confirmed` is a choice of fulfilment_activated only: confirmation cannot depend on itself.
    with pytest.raises(TimingError, match=r"order_confirmed\.moment.*created, authorized, paid"):
        load_timing(write_timing(tmp_path, order_confirmed="confirmed"))


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (lambda raw: raw["definitions"].pop("fulfilment_activated"), "definitions.fulfilment_activated", "missing"),
        (lambda raw: raw["definitions"].update(revenue_recognized=raw["definitions"]["revenue_recognised"]),
         "definitions.revenue_recognized", "unknown key"),
        (lambda raw: raw["definitions"]["order_confirmed"].update(owner="nobody"),
         "definitions.order_confirmed.owner", "unknown owner 'nobody'"),
        (lambda raw: raw["definitions"]["order_confirmed"].pop("description"),
         "definitions.order_confirmed.description", "missing"),
        (lambda raw: raw.update(version=0), "version", "must be >= 1"),
        (lambda raw: raw.pop("version"), "version", "missing"),
    ],
)  # fmt: skip
def test_a_broken_file_fails_with_the_path_inside_it(tmp_path, change, where, says):
    raw = yaml.safe_load((PACKAGED_DIR / "timing.yaml").read_text())
    change(raw)
    path = tmp_path / "timing.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(TimingError) as error:
        load_timing(path)
    assert f"{path}: {where}" in str(error.value) and says in str(error.value)


def test_a_missing_or_unparsable_file_is_one_sentence(tmp_path):
    with pytest.raises(TimingError, match="the timing file does not exist"):
        load_timing(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("definitions: [unclosed")
    with pytest.raises(TimingError, match="not valid YAML"):
        load_timing(tmp_path / "broken.yaml")


def test_timing_refuses_a_choice_outside_its_definition():
    with pytest.raises(
        ValueError, match="fulfilment_activated: 'created' is not one of confirmed, paid"
    ):
        Timing(fulfilment_activated="created")

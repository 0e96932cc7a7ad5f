"""One set of owners: every asset's owners in the Dagster UI, and every stream contract's owner, is a
person or team of the ownership registry (contracts/ownership.yaml), so an alert, a failed check or a
glossary term always leads to someone the registry knows how to reach."""

from integration_assets.contracts.ownership import load_ownership
from integration_assets.definitions import defs
from integration_assets.owners import STREAM_CONTRACTS, stream_owners

REGISTRY_EMAILS = {owner.email for owner in load_ownership().owners.values()}


def test_every_asset_is_owned_by_someone_the_registry_knows():
    strangers = {
        key.to_user_string(): sorted(set(spec.owners) - REGISTRY_EMAILS)
        for key, spec in ((spec.key, spec) for spec in defs.resolve_all_asset_specs())
        if set(spec.owners) - REGISTRY_EMAILS or not spec.owners
    }
    assert not strangers, strangers


def test_every_stream_contract_is_owned_by_someone_the_registry_knows():
    owners = stream_owners()
    assert len(owners) == len(STREAM_CONTRACTS)
    assert {stream: owner for stream, owner in owners.items() if owner not in REGISTRY_EMAILS} == {}

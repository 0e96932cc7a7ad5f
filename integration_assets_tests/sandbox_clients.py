"""Clients for every system of a running sandbox, with tiny backoffs so fault tests stay fast."""

from integration_assets.sandbox.server import RunningSystems
from integration_assets.storage.resources import ReportingDatabaseResource
from integration_assets.systems.crm import CrmClient
from integration_assets.systems.erp import ErpClient
from integration_assets.systems.payments import PaymentsClient
from integration_assets.systems.storefront import StorefrontClient
from integration_assets.systems.wms import WmsClient


def client_resources(systems: RunningSystems, scenario) -> dict:
    fast = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, "max_retries": 2}
    return {
        "storefront": StorefrontClient(
            shop_url=systems.storefront.url,
            access_token=scenario.shop.access_token,
            api_version=scenario.shop.api_version,
            **fast,
        ),
        "payments": PaymentsClient(
            base_url=systems.payments.url, secret_key=systems.payments.secret_key, **fast
        ),
        "erp": ErpClient(
            base_url=systems.erp.url,
            client_id=systems.erp.client_id,
            client_secret=systems.erp.client_secret,
            **fast,
        ),
        "crm": CrmClient(
            base_url=systems.crm.url,
            client_id=systems.crm.config.client_id,
            client_secret=systems.crm.config.client_secret,
            default_owner_id=systems.crm.config.default_owner,
            **fast,
        ),
        "wms": WmsClient(base_url=systems.wms.url, api_key=systems.wms.api_key, **fast),
        # DuckDB only, whatever REPORTING_DATABASE_URL says: a test publishes only where it says so.
        "reporting_database": ReportingDatabaseResource(read_environment=False),
    }

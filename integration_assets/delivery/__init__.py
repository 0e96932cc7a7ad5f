"""Writing into the working systems (ERP, CRM, WMS) through the outbox: planning intents and draining them."""

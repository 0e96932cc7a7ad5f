"""Tests of the sandbox storefront (real HTTP on 127.0.0.1, no mocks)."""

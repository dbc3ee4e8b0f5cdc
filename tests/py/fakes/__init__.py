"""Fake servers and an independent LumoAuth-profile verifier for the tests."""

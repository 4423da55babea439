"""Signing in: the social providers (one record each in providers.py) and local admin passwords."""

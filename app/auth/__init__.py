"""Signing in: the four social providers and local admin passwords."""

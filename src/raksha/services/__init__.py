"""The service layer: what a caller may do with incidents, whoever asks.

API routes and web pages are thin adapters over these functions: scope checks, audit
entries and the lifecycle rules live here once, and an action commits with its audit entry
or not at all.
"""

"""The seed's git-repository state: read into plain records (import), written back (export).

A bottom layer, like ``artifacts``: seed files in, records and notes out; records in, seed
documents out. No SQL, no HTTP: the legacy service and the store do the rest.
"""

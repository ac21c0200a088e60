"""Shoal's wire contract: object kinds, validation, subjects, keys, the msgpack codec and error codes.

This package is a leaf: it imports nothing else of Shoal's and does no I/O. ``protocol/README.md``
describes the same contract for clients written in other languages.
"""

PROTOCOL_VERSION = 1

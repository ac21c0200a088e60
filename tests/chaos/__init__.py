"""Chaos suite (issue 19): recorded histories of workloads run while faults are injected into the
network-namespace VMs of ``tests.multivm``, checked afterwards by pure checkers.

- ``checkers``: pure functions over recorded histories (no I/O, no asyncio): linearizability of each
  key's compare-and-swap register, no acknowledged write lost, no pod bound twice, watch streams in order
  with no silent gap. Tested on known-good and known-bad histories (``test_checkers.py``).
- ``faults``: the fault injector (kill -9/restart, SIGSTOP/SIGCONT, nftables partitions and packet loss,
  clock jumps under libfaketime).
- ``workloads``: CAS clients, watchers and pod creators that record what they did and saw.
- ``soak``: ``python -m tests.chaos.soak --minutes 30 --rate 500 --seed N``.

The suite lives under ``tests/`` because it drives the multi-VM cluster of ``tests.multivm``; the
checkers are a subpackage with no I/O so that tests and the soak share them.
"""

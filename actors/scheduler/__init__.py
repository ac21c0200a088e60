"""The scheduler actor: assigns pending pods to nodes, as kube-scheduler does.

Modules: ``model`` (parsed pod and node facts, ints only), ``filters`` and ``scores`` (pure plugins),
``decide`` (the pure per-pod decision with node sampling), ``cache`` (node usage with assumed pods),
``queue`` (active / back-off / unschedulable queues), ``actor`` (informers, leader election, binding).
"""

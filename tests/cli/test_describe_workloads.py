"""``shoal describe`` of a DaemonSet and a PodDisruptionBudget, as kubectl words them (pure rendering)."""

from __future__ import annotations

from shoal.cli.describe import describe

NOW = 1_700_000_000.0


def test_daemonset_description() -> None:
    ds = {"kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "kube-system"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"nodeSelector": {"role": "edge"},
                                         "containers": [{"name": "agent", "image": "agent:1"}]}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 2,
                     "numberAvailable": 2, "numberReady": 3, "numberMisscheduled": 1}}
    text = describe(ds, events=None, now=NOW)
    for line in ("Selector:", "app=agent", "Node-Selector:", "role=edge", "Desired Number of Nodes Scheduled:",
                 "Number of Nodes Scheduled with Up-to-date Pods:", "Number of Nodes Misscheduled:",
                 "3 Ready / 2 Available", "RollingUpdateStrategy:", "1 max unavailable, 0 max surge", "agent:1"):
        assert line in text, (line, text)


def test_budget_description() -> None:
    pdb = {"kind": "PodDisruptionBudget", "metadata": {"name": "db", "namespace": "default"},
           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}},
           "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
                      "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}]}}
    text = describe(pdb, events=None, now=NOW)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for wanted in ("Min available: 2", "Selector: app=db", "Allowed disruptions: 1", "Current: 3", "Desired: 2",
                   "Total: 3"):
        assert wanted in lines, (wanted, text)
    assert "Max unavailable" not in text

"""Unknown fields (issue 18, item 5): warned and dropped by default, refused with fieldValidation Strict
(``shoal apply/create --validate=strict``), never reported for a valid Kubernetes field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from protocol.errors import BadRequest
from protocol.kinds import strategy_for
from protocol.unknown_fields import FieldValidation, apply, field_validation, find_unknown
from runtime.client import ApiClient

REALISTIC = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
  annotations: {deployment.kubernetes.io/revision: "1"}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 600
  minReadySeconds: 0
  paused: false
  selector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [front]}]
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}}
  template:
    metadata:
      labels: {app: web, tier: front}
      annotations: {prometheus.io/scrape: "true"}
    spec:
      serviceAccountName: web
      automountServiceAccountToken: false
      imagePullSecrets: [{name: registry}]
      securityContext: {runAsNonRoot: true, fsGroup: 2000, seccompProfile: {type: RuntimeDefault}}
      priorityClassName: high
      dnsPolicy: ClusterFirst
      schedulerName: default-scheduler
      enableServiceLinks: false
      hostname: web
      subdomain: web
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}
      tolerations: [{key: dedicated, operator: Equal, value: web, effect: NoSchedule, tolerationSeconds: 30}]
      nodeSelector: {disk: ssd}
      terminationGracePeriodSeconds: 30
      volumes:
        - {name: config, configMap: {name: web-config, items: [{key: a, path: a.conf}]}}
        - {name: cache, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
      initContainers:
        - name: migrate
          image: registry.example/web:1.2
          command: [sh, -c, "migrate"]
          envFrom: [{configMapRef: {name: web-env}}]
      containers:
        - name: web
          image: registry.example/web:1.2
          imagePullPolicy: IfNotPresent
          args: ["--port=8080"]
          workingDir: /srv
          ports: [{name: http, containerPort: 8080, protocol: TCP}]
          env:
            - {name: MODE, value: prod}
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
          livenessProbe:
            httpGet: {path: /healthz, port: 8080, scheme: HTTP, httpHeaders: [{name: X, value: y}]}
            initialDelaySeconds: 5
            periodSeconds: 10
            timeoutSeconds: 1
            failureThreshold: 3
            terminationGracePeriodSeconds: 10
          readinessProbe: {tcpSocket: {port: 8080, host: 127.0.0.1}, periodSeconds: 5}
          startupProbe: {exec: {command: [cat, /tmp/ready]}, failureThreshold: 30}
          lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: config, mountPath: /etc/web, readOnly: true}]
          terminationMessagePolicy: FallbackToLogsOnError
          stdin: false
          tty: false
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  externalTrafficPolicy: Local
  internalTrafficPolicy: Cluster
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}
  publishNotReadyAddresses: false
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP, appProtocol: http}]
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
immutable: true
data: {password: aHVudGVyMg==}
stringData: {user: admin}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
immutable: false
data: {a: b}
binaryData: {blob: AAE=}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
automountServiceAccountToken: false
imagePullSecrets: [{name: registry}]
secrets: [{name: web-token, namespace: default}]
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  ownerReferences: [{apiVersion: v1, kind: Node, name: n1, uid: "1", controller: true}]
  finalizers: [example.com/keep]
spec:
  hostNetwork: false
  restartPolicy: Never
  activeDeadlineSeconds: 60
  containers: [{name: c, image: busybox, stdinOnce: false, resizePolicy: [{resourceName: cpu,
                restartPolicy: NotRequired}]}]
status: {phase: Pending, hostIP: 10.0.0.1, startTime: "2026-01-01T00:00:00Z"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring, labels: {rbac.example.com/aggregate-to-monitoring: "true"}}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {rbac.example.com/aggregate-to-monitoring: "true"}}]
rules:
- {apiGroups: [""], resources: [pods, pods/log], resourceNames: [web], verbs: [get]}
- {nonResourceURLs: [/metrics], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
- {kind: ServiceAccount, name: robot, namespace: default}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
"""


def realistic() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(REALISTIC) if d]


@pytest.mark.parametrize("obj", realistic(), ids=lambda o: str(o["kind"]))
def test_no_false_unknown_field_on_realistic_manifests(obj: dict[str, Any]) -> None:
    assert find_unknown(obj, strategy_for(obj["kind"])) == []


def test_unknown_fields_are_found_warned_and_pruned_or_refused() -> None:
    deployment = realistic()[0]
    deployment["spec"]["replicaz"] = 3
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    deployment["metadata"]["nmae"] = "typo"
    deployment["specs"] = {}
    deployment["spec"]["template"]["spec"]["securityContext"]["whatever"] = 1  # undescribed subtree: kept
    strategy = strategy_for("Deployment")
    expected = ["specs", "spec.replicaz", "spec.template.spec.containers[0].imagePullPolice", "metadata.nmae"]
    assert sorted(find_unknown(deployment, strategy)) == sorted(expected)
    with pytest.raises(BadRequest, match=r"unknown field \"spec\.replicaz\""):
        apply(copy.deepcopy(deployment), strategy, FieldValidation.STRICT)
    ignored = copy.deepcopy(deployment)
    assert apply(ignored, strategy, FieldValidation.IGNORE) == []
    warned = copy.deepcopy(deployment)
    assert sorted(apply(warned, strategy, FieldValidation.WARN)) == sorted(f'unknown field "{p}"' for p in expected)
    for pruned in (ignored, warned):
        assert find_unknown(pruned, strategy) == []
        assert "replicaz" not in pruned["spec"] and "specs" not in pruned
        assert pruned["spec"]["template"]["spec"]["securityContext"]["whatever"] == 1
    assert field_validation(None) == FieldValidation.WARN
    with pytest.raises(BadRequest):
        field_validation("strict-ish")


async def test_api_warns_and_drops_unknown_fields_and_refuses_them_when_strict(client: ApiClient) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"},
          "dta": {"nested": {"deeper": [1, 2]}}}
    warnings: list[str] = []
    client.on_warning = warnings.append
    created = await client.create(cm)
    assert "dta" not in created and "dta" not in await client.get("configmaps", "cm")
    assert warnings == ['unknown field "dta"']
    strict = ApiClient(client.nc, field_validation="Strict")
    with pytest.raises(BadRequest, match='unknown field "dta"'):
        await strict.create(dict(cm, metadata={"name": "cm2"}))
    with pytest.raises(BadRequest, match='unknown field "dta"'):
        await strict.patch("configmaps", "cm", {"dta": {"x": "y"}})
    await strict.patch("configmaps", "cm", {"data": {"c": "d"}})
    names = [c["metadata"]["name"] for c in (await client.list("configmaps")).items]
    assert "cm2" not in names


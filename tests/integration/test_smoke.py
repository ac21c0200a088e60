from runtime.client import ApiClient


async def test_create_get(client: ApiClient) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web.1", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    created = await client.create(pod)
    assert created["metadata"]["namespace"] == "default"
    got = await client.get("Pod", "web.1")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    lst = await client.list("pods", "default")
    assert [p["metadata"]["name"] for p in lst.items] == ["web.1"]

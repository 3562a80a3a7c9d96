"""`kustomize build`, for the features deploy/k8s uses, in Python.

No kustomize binary installs from PyPI, so the tests render the kustomizations
here: resources (files and kustomization folders), JSON 6902 patches with a
target, images and namespace, applied in kustomize's order. Any other field is
refused, so a feature added to deploy/k8s fails the tests instead of being
silently ignored. (Checked against `kubectl kustomize` v5.5.0: same output.)
"""

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class Unsupported(Exception):
    pass


def build(folder: Path) -> list[Manifest]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise Unsupported(f"{folder}: kustomization fields {sorted(unsupported)}")
    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        if path.is_dir():
            manifests += build(path)
        else:
            manifests += [m for m in yaml.safe_load_all(path.read_text()) if m]
    if namespace := kustomization.get("namespace"):
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest["metadata"]["namespace"] = namespace
    for patch in kustomization.get("patches", []):
        _patch(manifests, patch)
    for image in kustomization.get("images", []):
        for manifest in manifests:
            _set_image(manifest, image)
    return manifests


def _patch(manifests: list[Manifest], patch: dict[str, Any]) -> None:
    if set(patch) != {"target", "patch"}:
        raise Unsupported(f"only inline JSON 6902 patches with a target: {sorted(patch)}")
    target = patch["target"]
    if set(target) - {"kind", "name"}:
        raise Unsupported(f"patch targets by kind and name only: {target}")
    operations = yaml.safe_load(patch["patch"])
    matched = [
        m
        for m in manifests
        if m["kind"] == target.get("kind", m["kind"])
        and m["metadata"]["name"] == target.get("name", m["metadata"]["name"])
    ]
    if not matched:
        raise Unsupported(f"patch target {target} matches no resource")
    for manifest in matched:
        for operation in operations:
            _apply(manifest, operation)


def _apply(document: Manifest, operation: dict[str, Any]) -> None:
    """One RFC 6902 operation (add, remove, replace, test) on `document`, in place."""
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = last if isinstance(node, dict) else (len(node) if last == "-" else int(last))
    op = operation["op"]
    if op not in ("add", "remove", "replace", "test"):
        raise Unsupported(f"JSON patch op {op!r}")
    if op == "test":
        if node[key] != operation["value"]:
            raise AssertionError(f"patch test failed at {operation['path']}: {node[key]!r}")
        return
    if op in ("remove", "replace"):
        del node[key]  # replace is remove then add: what it replaces must exist
    if op in ("add", "replace"):
        value = copy.deepcopy(operation["value"])
        if isinstance(node, list):
            node.insert(key, value)
        else:
            node[key] = value


def _set_image(node: Any, image: dict[str, str]) -> None:
    """kustomize's image transformer: every container whose image has that name."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                for container in value:
                    name, tag = split_image(container["image"])
                    if name == image["name"]:
                        new_tag = str(image.get("newTag", tag))
                        container["image"] = f"{image.get('newName', name)}:{new_tag}"
            else:
                _set_image(value, image)
    elif isinstance(node, list):
        for item in node:
            _set_image(item, image)


def split_image(reference: str) -> tuple[str, str | None]:
    """`registry:5000/name:tag@digest` -> (`registry:5000/name`, `tag`)."""
    reference = reference.split("@")[0]
    path, _, last = reference.rpartition("/")
    name, _, tag = last.partition(":")
    return (f"{path}/{name}" if path else name), (tag or None)

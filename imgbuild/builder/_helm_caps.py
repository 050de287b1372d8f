"""``.Capabilities`` as ``helm template`` (helm 3.15, the version sealos links) sees it without a cluster.

Without a cluster helm uses its defaults: Kubernetes ``v1.30.0`` (the client-go
it was built with) and the API versions of client-go's scheme, each as
``group/version`` and ``group/version/Kind``. CRD groups (``apiextensions.k8s.io``,
``monitoring.coreos.com``...) are not in that scheme, so a chart that guards a
ServiceMonitor with ``.Capabilities.APIVersions.Has "monitoring.coreos.com/v1"``
renders none, exactly as ``helm template`` does.
"""

from __future__ import annotations

__all__ = ["Capabilities", "KubeVersion", "VersionSet", "DEFAULT_KUBE_VERSION", "HELM_VERSION"]

DEFAULT_KUBE_VERSION = "v1.30.0"
HELM_VERSION = "v3.15.4"

_WORKLOADS = "ControllerRevision DaemonSet Deployment ReplicaSet StatefulSet"
_SCHEME: dict[str, str] = {
    "v1": "Binding ComponentStatus ConfigMap Endpoints Event LimitRange Namespace Node PersistentVolume "
          "PersistentVolumeClaim Pod PodTemplate ReplicationController ResourceQuota Secret Service ServiceAccount",
    "admissionregistration.k8s.io/v1": "MutatingWebhookConfiguration ValidatingWebhookConfiguration "
                                       "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/v1beta1": "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/v1alpha1": "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding",
    "internal.apiserver.k8s.io/v1alpha1": "StorageVersion",
    "apps/v1": _WORKLOADS,
    "apps/v1beta1": "ControllerRevision Deployment StatefulSet",
    "apps/v1beta2": _WORKLOADS,
    "authentication.k8s.io/v1": "SelfSubjectReview TokenRequest TokenReview",
    "authentication.k8s.io/v1alpha1": "SelfSubjectReview",
    "authentication.k8s.io/v1beta1": "SelfSubjectReview TokenReview",
    "authorization.k8s.io/v1": "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview "
                               "SubjectAccessReview",
    "authorization.k8s.io/v1beta1": "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview "
                                    "SubjectAccessReview",
    "autoscaling/v1": "HorizontalPodAutoscaler Scale",
    "autoscaling/v2": "HorizontalPodAutoscaler",
    "autoscaling/v2beta1": "HorizontalPodAutoscaler",
    "autoscaling/v2beta2": "HorizontalPodAutoscaler",
    "batch/v1": "CronJob Job",
    "batch/v1beta1": "CronJob",
    "certificates.k8s.io/v1": "CertificateSigningRequest",
    "certificates.k8s.io/v1alpha1": "ClusterTrustBundle",
    "certificates.k8s.io/v1beta1": "CertificateSigningRequest",
    "coordination.k8s.io/v1": "Lease",
    "coordination.k8s.io/v1beta1": "Lease",
    "discovery.k8s.io/v1": "EndpointSlice",
    "discovery.k8s.io/v1beta1": "EndpointSlice",
    "events.k8s.io/v1": "Event",
    "events.k8s.io/v1beta1": "Event",
    "extensions/v1beta1": "DaemonSet Deployment Ingress NetworkPolicy ReplicaSet",
    "flowcontrol.apiserver.k8s.io/v1": "FlowSchema PriorityLevelConfiguration",
    "flowcontrol.apiserver.k8s.io/v1beta1": "FlowSchema PriorityLevelConfiguration",
    "flowcontrol.apiserver.k8s.io/v1beta2": "FlowSchema PriorityLevelConfiguration",
    "flowcontrol.apiserver.k8s.io/v1beta3": "FlowSchema PriorityLevelConfiguration",
    "networking.k8s.io/v1": "Ingress IngressClass NetworkPolicy",
    "networking.k8s.io/v1alpha1": "IPAddress ServiceCIDR",
    "networking.k8s.io/v1beta1": "Ingress IngressClass",
    "node.k8s.io/v1": "RuntimeClass",
    "node.k8s.io/v1alpha1": "RuntimeClass",
    "node.k8s.io/v1beta1": "RuntimeClass",
    "policy/v1": "Eviction PodDisruptionBudget",
    "policy/v1beta1": "Eviction PodDisruptionBudget PodSecurityPolicy",
    "rbac.authorization.k8s.io/v1": "ClusterRole ClusterRoleBinding Role RoleBinding",
    "rbac.authorization.k8s.io/v1alpha1": "ClusterRole ClusterRoleBinding Role RoleBinding",
    "rbac.authorization.k8s.io/v1beta1": "ClusterRole ClusterRoleBinding Role RoleBinding",
    "resource.k8s.io/v1alpha2": "PodSchedulingContext ResourceClaim ResourceClaimParameters ResourceClaimTemplate "
                                "ResourceClass ResourceClassParameters ResourceSlice",
    "scheduling.k8s.io/v1": "PriorityClass",
    "scheduling.k8s.io/v1alpha1": "PriorityClass",
    "scheduling.k8s.io/v1beta1": "PriorityClass",
    "storage.k8s.io/v1": "CSIDriver CSINode CSIStorageCapacity StorageClass VolumeAttachment",
    "storage.k8s.io/v1alpha1": "CSIStorageCapacity VolumeAttachment VolumeAttributesClass",
    "storage.k8s.io/v1beta1": "CSIDriver CSINode CSIStorageCapacity StorageClass VolumeAttachment",
    "storagemigration.k8s.io/v1alpha1": "StorageVersionMigration",
}


class VersionSet:
    """``.Capabilities.APIVersions``: ``group/version`` and ``group/version/Kind`` strings, asked with ``Has``."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self._set = frozenset(items)

    def Has(self, apiver: str) -> bool:  # noqa: N802 - the Go method name templates call
        """True if the API version (or ``version/Kind``) is known."""
        return apiver in self._set

    def __str__(self) -> str:
        return "[" + " ".join(self.items) + "]"

    @classmethod
    def default(cls, extra: tuple[str, ...] = ()) -> "VersionSet":
        """client-go's scheme as helm lists it, plus ``extra`` (``--api-versions``)."""
        return cls(sorted({*_SCHEME, *(f"{gv}/{k}" for gv, kinds in _SCHEME.items() for k in kinds.split()), *extra}))


class KubeVersion:
    """``.Capabilities.KubeVersion``: Version, Major, Minor, GitVersion; prints as its version."""

    def __init__(self, version: str = DEFAULT_KUBE_VERSION) -> None:
        v = version if version.startswith("v") else f"v{version}"
        parts = v[1:].split(".")
        self.Version = v
        self.GitVersion = v
        self.Major = parts[0]
        self.Minor = parts[1] if len(parts) > 1 else "0"

    def String(self) -> str:  # noqa: N802
        """The version, as Go's Stringer."""
        return self.Version

    def __str__(self) -> str:
        return self.Version


class _HelmVersion:
    """``.Capabilities.HelmVersion``."""

    def __init__(self) -> None:
        self.Version = HELM_VERSION
        self.GitCommit = ""
        self.GitTreeState = "clean"
        self.GoVersion = "go1.22.5"

    def __str__(self) -> str:
        return self.Version


class Capabilities:
    """``.Capabilities``: KubeVersion, APIVersions and HelmVersion."""

    def __init__(self, kube_version: str = DEFAULT_KUBE_VERSION, api_versions: tuple[str, ...] = ()) -> None:
        self.KubeVersion = KubeVersion(kube_version)
        self.APIVersions = VersionSet.default(api_versions)
        self.HelmVersion = _HelmVersion()

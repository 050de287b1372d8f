"""builder/: Kubefile + context -> image.

``plan`` turns a parsed Kubefile and its context into a BuildPlan; ``context``
resolves sources safely inside the context directory; ``images`` finds every
container image the context needs (charts, manifests, shim lists) so a cluster
image can install offline; ``native`` and ``buildah`` turn a plan into layers in
the local store; ``request`` is the one call from a BuildRequest to tagged
images (per platform, with the images bundled into registry/); ``cache`` keeps
build-step results.
"""

__all__: list[str] = []

# imgbuild with buildah inside, for CI image pipelines (no docker daemon needed to build or to use it).
#
#   buildah bud -t imgbuild .            (or: docker build -t imgbuild .)
#   podman run --rm imgbuild version
#   podman run --rm --device /dev/fuse -v "$PWD:/work" -w /work imgbuild build -t app:v1 .
#
# Two stages: `build` makes a venv with imgbuild[docker] from this source tree; the final image is the
# base with python3, buildah and that venv only (no compiler, no pip cache, no apt lists). It runs as the
# non-root user `imgbuild` (uid 1000, with subordinate ids for rootless buildah; buildah's chroot isolation
# and vfs storage, so no privileges or fuse are needed for buildah builds; imgbuild's native backend needs
# neither). Offline builds pass wheels in the context: --build-arg PIP_OPTS="--no-index --find-links
# /context/wheels". A base that already has python3/venv/buildah (an offline mirror's) skips apt-get.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS build
RUN python3 -c 'import ensurepip, venv' 2>/dev/null || { apt-get update \
      && apt-get install -y --no-install-recommends python3 python3-venv \
      && rm -rf /var/lib/apt/lists/*; }
COPY pyproject.toml README.md /src/
COPY imgbuild /src/imgbuild
ARG PIP_OPTS=""
RUN --mount=type=bind,source=.,target=/context \
    python3 -m venv /opt/imgbuild \
    && /opt/imgbuild/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_OPTS} "/src[docker]" \
    && /opt/imgbuild/bin/pip uninstall -y -q pip setuptools \
    && find /opt/imgbuild -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
RUN { command -v buildah && python3 -c 'import sys'; } >/dev/null 2>&1 || { apt-get update \
      && apt-get install -y --no-install-recommends python3 buildah fuse-overlayfs uidmap ca-certificates \
      && rm -rf /var/lib/apt/lists/*; }
RUN echo 'imgbuild:x:1000:1000:imgbuild:/home/imgbuild:/bin/sh' >> /etc/passwd \
    && echo 'imgbuild:x:1000:' >> /etc/group \
    && echo 'imgbuild:100000:65536' >> /etc/subuid \
    && echo 'imgbuild:100000:65536' >> /etc/subgid \
    && mkdir -p /home/imgbuild/.imgbuild /home/imgbuild/.local/share/containers \
    && chown -R 1000:1000 /home/imgbuild
COPY --from=build /opt/imgbuild /opt/imgbuild
ENV PATH=/opt/imgbuild/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/imgbuild \
    IMGBUILD_HOME=/home/imgbuild/.imgbuild \
    BUILDAH_ISOLATION=chroot \
    STORAGE_DRIVER=vfs
USER imgbuild
WORKDIR /home/imgbuild
ENTRYPOINT ["imgbuild"]
CMD ["--help"]

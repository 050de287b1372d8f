"""Stand-in binaries that record their arguments, served by a loopback mirror laid out like the real downloads.

The runtime images (kubefiles/kubernetes, k3s, k0s) download kubeadm, k3s, k0s ...
from dl.k8s.io and GitHub; tests have no network. :func:`build_mirror` lays out a
directory with the same paths (``K8S_URL`` and ``GITHUB_URL`` point at it), holding
stand-ins: small bash scripts that append ``name arg...`` to :data:`LOG` on the host
they run on, do the little a script's next step relies on (kubeadm writes the
kubeconfigs, ``config images list`` prints images, k3s/k0s servers listen on their
API ports) and, for daemons, stay running under their own name (``exec -a``), so the
scripts' pid files and idempotence checks see them as the real thing. The registry
is the real docker-registry, since init-registry waits for it to answer.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

__all__ = ["LOG", "VERSIONS", "standin", "build_mirror", "serve", "systemctl_standin"]

LOG = "/tmp/standin.log"  # on sandbox hosts /tmp is a tmpfs: the log is not in the overlay upper layers
VERSIONS = {"kubernetes": "v1.28.2", "k3s": "v1.28.2+k3s1", "k0s": "v1.28.2+k0s.0", "containerd": "1.7.13",
            "runc": "v1.1.12", "crictl": "v1.28.0", "registry": "2.8.3"}

_LISTEN = 'exec -a "$0" python3 -c "{py}" "$@"'
_PY_LISTEN = ("import socket,sys,time; ss=[socket.create_server(('0.0.0.0', p)) for p in ({ports})]; "
              "[s.listen() for s in ss]; time.sleep(1e9)")
_BODIES = {
    "kubeadm": """case "$1" in
  config) for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do echo "registry.k8s.io/$c:$5"; done
          echo registry.k8s.io/pause:3.9; echo registry.k8s.io/etcd:3.5.9-0; echo registry.k8s.io/coredns/coredns:v1.10.1 ;;
  init) mkdir -p /etc/kubernetes/manifests && touch /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf ;;
  join) mkdir -p /etc/kubernetes && touch /etc/kubernetes/kubelet.conf
        if grep -q '^controlPlane:' "$3"; then touch /etc/kubernetes/admin.conf; fi ;;
  reset) rm -rf /etc/kubernetes/manifests /etc/kubernetes/pki /etc/kubernetes/*.conf ;;
esac""",
    "containerd": 'exec -a "$0" sleep infinity',
    "ctr": 'case "$*" in *version*) echo "stand-in ctr" ;; esac',
    "k3s": 'case "$1" in server) ' + _LISTEN.format(py=_PY_LISTEN.format(ports="6443,")) + ' ;;'
           ' agent) exec -a "$0" sleep infinity ;; esac',
    "k0s": 'case "$1" in controller) ' + _LISTEN.format(py=_PY_LISTEN.format(ports="6443, 9443")) + ' ;;'
           ' worker) exec -a "$0" sleep infinity ;; esac',
}


def standin(name: str) -> str:
    """The text of stand-in ``name``: record the call in :data:`LOG`, then act as the tests need."""
    return (f"#!/bin/bash\n# stand-in {name} for tests: records its arguments\n"
            f"printf '%s\\n' \"{name} $*\" >> {LOG}\n{_BODIES.get(name, '')}\n")


def systemctl_standin() -> str:
    """A systemctl that records its calls and keeps unit state in /tmp (for hosts that look like systemd runs)."""
    return f"""#!/bin/bash
printf '%s\\n' "systemctl $*" >> {LOG}
state=/tmp/standin-systemd; mkdir -p "$state"
[ "$2" = --now ] || [ "$2" = --quiet ] && now=1 unit=$3 || unit=$2
case "$1" in
  is-active) [ -f "$state/$unit" ] ;;
  start|restart) touch "$state/$unit" ;;
  enable) if [ "${{now:-}}" = 1 ]; then touch "$state/$unit"; fi ;;
  stop) rm -f "$state/$unit" ;;
  disable) if [ "${{now:-}}" = 1 ]; then rm -f "$state/$unit"; fi ;;
esac
exit 0
"""


def _file(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_mirror(root: Path, arch: str = "amd64") -> Path:
    """Lay out ``root`` as dl.k8s.io (``root/k8s``) and github.com (``root/gh``) for the runtime images' fetch.sh."""
    v = VERSIONS
    s = {name: standin(name).encode() for name in ("kubeadm", "kubelet", "kubectl", "crictl", "containerd", "ctr",
                                                   "containerd-shim-runc-v2", "runc", "k3s", "k0s")}
    for b in ("kubeadm", "kubelet", "kubectl"):
        _file(root, f"k8s/{v['kubernetes']}/bin/linux/{arch}/{b}", s[b])
    gh = root / "gh"
    _file(gh, f"containerd/containerd/releases/download/v{v['containerd']}/containerd-{v['containerd']}-linux-{arch}"
              ".tar.gz", _tgz({f"bin/{b}": s[b] for b in ("containerd", "ctr", "containerd-shim-runc-v2")}))
    _file(gh, f"opencontainers/runc/releases/download/{v['runc']}/runc.{arch}", s["runc"])
    _file(gh, f"kubernetes-sigs/cri-tools/releases/download/{v['crictl']}/crictl-{v['crictl']}-linux-{arch}.tar.gz",
          _tgz({"crictl": s["crictl"]}))
    registry = Path(shutil.which("docker-registry") or "/usr/bin/docker-registry").read_bytes()
    _file(gh, f"distribution/distribution/releases/download/v{v['registry']}/registry_{v['registry']}_linux_{arch}"
              ".tar.gz", _tgz({"registry": registry}))
    k3s = f"k3s-io/k3s/releases/download/{v['k3s']}"  # fetch.sh asks for %2B, which the server decodes
    _file(gh, f"{k3s}/k3s" if arch == "amd64" else f"{k3s}/k3s-{arch}", s["k3s"])
    _file(gh, f"{k3s}/k3s-airgap-images-{arch}.tar.zst", b"stand-in airgap images\n")
    k0s = f"k0sproject/k0s/releases/download/{v['k0s']}"
    _file(gh, f"{k0s}/k0s-{v['k0s']}-{arch}", s["k0s"])
    _file(gh, f"{k0s}/k0s-airgap-bundle-{v['k0s']}-{arch}", b"stand-in airgap bundle\n")
    return root


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test output stays readable
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` over plain HTTP on 127.0.0.1 (an ephemeral port); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="standin-mirror")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

"""Run a cluster image's lifecycle scripts by hand on sandbox hosts, as the engine would, without SSH.

The tests of the cluster images' scripts (tests/integration/test_etcd_images.py,
test_runtime_images.py) need what the run engine gives a host, and nothing of the
engine itself: the image's tree at ``$SEALOS_SYS_ROOTFS`` with every ``*.tmpl``
rendered for that host, the cluster PKI at ``$SEALOS_SYS_PKI``, the registry name
in ``/etc/hosts`` and the contract env (imgbuild/labels.py ``ENGINE_ENV``). Hosts
are reached with ``nsenter`` (fast, clean env), so a script's arguments, its
idempotence and what clean leaves behind can be checked in seconds.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from imgbuild.engine.exec import LocalExecutor, Result, tar_stream
from imgbuild.engine.pki import ClusterPKI, host_bundle
from imgbuild.gotemplate import render
from imgbuild.infra.sandbox import Sandbox, SandboxHost

__all__ = ["ClusterHosts", "upper_files", "cli_ok"]

DATA = "/var/lib/sealos/data"
_LOCAL = LocalExecutor()


@dataclass
class ClusterHosts:
    """A sandbox (tests/support/sandbox.py ``sandbox_slot``) whose first ``masters`` hosts are masters.

    The first host is master0 and the registry host; ``work`` is a local directory for staging and the CA.
    """

    sandbox: Sandbox
    masters: int
    image_env: dict[str, str]
    work: Path
    cluster: str = "test"

    @property
    def hosts(self) -> list[SandboxHost]:
        """The hosts, master0 first."""
        return sorted(self.sandbox.hosts, key=lambda h: h.index)

    @property
    def rootfs(self) -> str:
        """``$SEALOS_SYS_ROOTFS`` on every host."""
        return f"{DATA}/{self.cluster}/rootfs"

    def env(self, host: SandboxHost) -> dict[str, str]:
        """What a lifecycle script on ``host`` gets: the image's env, then the engine's."""
        ips = [h.address for h in self.hosts]
        masters, nodes = ips[: self.masters], ips[self.masters:]
        roles = ["master" if host.address in masters else "node"] + (["registry"] if host.address == ips[0] else [])
        return {**self.image_env, "HOST_IP": host.address, "HOST_ROLES": ",".join(roles), "MASTER0": ips[0],
                "MASTERS": ",".join(masters), "NODES": ",".join(nodes), "REGISTRY_HOSTS": ips[0],
                "SEALOS_SYS_CLUSTER_NAME": self.cluster, "SEALOS_SYS_ROOTFS": self.rootfs,
                "SEALOS_SYS_PKI": f"{DATA}/{self.cluster}/pki"}

    def ship(self, tree: Path, hosts: Sequence[SandboxHost] | None = None) -> None:
        """Send ``tree`` to each host's rootfs with its templates rendered, the PKI, and sealos.hub in /etc/hosts."""
        pki = ClusterPKI(self.work / "ca").ensure()
        for host in hosts or self.hosts:
            env = self.env(host)
            staged = self.work / "staged" / host.name
            shutil.rmtree(staged, ignore_errors=True)
            shutil.copytree(tree, staged, symlinks=True)
            for tmpl in staged.rglob("*.tmpl"):
                tmpl.with_suffix("").write_text(render(tmpl.read_text(), env, name=str(tmpl.relative_to(staged))))
            bundle = host_bundle(pki, host.address, host.name, "master" in env["HOST_ROLES"],
                                 self.work / "pki" / host.name)
            self.sh(host, f"mkdir -p {self.rootfs} && tar -C {self.rootfs} -x", input=tar_stream(staged))
            self.sh(host, f"mkdir -p -m 700 {env['SEALOS_SYS_PKI']} && tar -C {env['SEALOS_SYS_PKI']} -x",
                    input=tar_stream(bundle))
            domain = self.image_env.get("registryDomain", "sealos.hub")
            self.sh(host, f"grep -q ' {domain}$' /etc/hosts || echo '{self.hosts[0].address} {domain}' >> /etc/hosts")

    def put(self, host: SandboxHost, files: Mapping[str, str]) -> None:
        """Write text files (absolute path -> content, mode 755) on ``host``: stand-ins a test puts in place."""
        for path, text in files.items():
            self.sh(host, f"mkdir -p {shlex.quote(str(Path(path).parent))} && cat > {shlex.quote(path)} && "
                          f"chmod 755 {shlex.quote(path)}", input=text)

    def sh(self, host: SandboxHost, script: str, *, check: bool = True, input=None, timeout: float = 180) -> Result:
        """Run ``script`` with bash on ``host`` in the clean env the sandbox gives."""
        return _LOCAL.run(host.nsenter_argv(["bash", "-c", script]), check=check, input=input, timeout=timeout)

    def script(self, host: SandboxHost, name: str, *, check: bool = True, env: Mapping[str, str] | None = None,
               timeout: float = 180) -> Result:
        """Run ``scripts/<name>`` on ``host`` as the engine runs a lifecycle label, with the contract env."""
        full = {**self.env(host), **(env or {})}
        assign = " ".join(f"{k}={shlex.quote(v)}" for k, v in full.items())
        return self.sh(host, f"cd {self.rootfs}/scripts && env {assign} bash {shlex.quote(name)}", check=check,
                       timeout=timeout)


def upper_files(hosts: Sequence[SandboxHost]) -> dict[str, str]:
    """Every non-directory in the hosts' overlay upper layers: path -> checksum (or file type for others)."""
    out: dict[str, str] = {}
    for host in hosts:
        for path in sorted(host.upper.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            key = f"{host.name}:{path.relative_to(host.upper)}"
            if path.is_symlink():
                out[key] = "symlink:" + str(path.readlink())
            elif path.is_file():
                out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[key] = "special"
    return out


def cli_ok(capsys, *argv: str) -> str:
    """Run ``imgbuild ARGV`` in-process, assert it exited 0, and return what it printed."""
    from imgbuild.cli.main import run

    code = run(list(argv))
    out = capsys.readouterr()
    assert code == 0, f"imgbuild {' '.join(argv)} exited {code}: {out.err}"
    return out.out

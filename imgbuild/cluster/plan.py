"""From the saved state to the desired Cluster: a pure, ordered list of actions, as sealos' applier decides.

``plan(desired, current)`` compares a desired :class:`~imgbuild.cluster.model.Cluster`
with the :class:`~imgbuild.cluster.state.ClusterState` of the last apply and
says what to do, in the order to do it:

- ``create`` when there is no state, or the first create never finished;
- ``remove_host`` / ``add_host`` per host (keyed by IP: a changed SSH port is
  not a new host; a host whose roles changed is removed and added again, as
  sealos' separate master/node diffs do). ``add_host`` brings a host to every
  image the cluster has; removing or moving master0 is refused, as sealos
  refuses to delete master0;
- ``remove_image`` / ``add_image`` per image (on every host). Removing a rootfs
  image is refused: sealos cannot take the rootfs away from a running cluster
  either (reset it and run again);
- ``rerender`` per kept host whose effective env (spec.env < host env < ``-e``)
  changed, so its templates are rendered again; the reason names the changed
  variables, never their values;
- ``noop`` when nothing differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from imgbuild.cluster.env import effective_env
from imgbuild.cluster.hosts import Machine, role_set
from imgbuild.cluster.model import Cluster
from imgbuild.cluster.state import ClusterState
from imgbuild.errors import ClusterfileError
from imgbuild.labels import TYPE_ROOTFS

__all__ = ["Action", "KINDS", "plan"]

KINDS = ("create", "remove_host", "add_host", "remove_image", "add_image", "rerender", "noop")


@dataclass(frozen=True)
class Action:
    """One thing to do: its kind, the host (IP address) or image it concerns, and why."""

    kind: str
    host: str | None = None
    image: str | None = None
    reason: str = ""


def plan(desired: Cluster, current: ClusterState | None, *, cli_env: Mapping[str, str] | None = None) -> list[Action]:
    """The actions that take the cluster from ``current`` to ``desired``; ClusterfileError for a refused change.

    ``cli_env`` is this run's ``-e`` env (None: the same as the last run's, kept in the state).
    """
    if current is None:
        return [Action("create", reason="the cluster has no state yet")]
    if not current.created:
        return [Action("create", reason="the first apply of the cluster did not finish")]
    applied = current.cluster
    old = {m.address: m for m in applied.machines()}
    new = {m.address: m for m in desired.machines()}
    _check_master0(applied, desired, new)
    actions = _hosts(old, new) + _images(applied, desired, current)
    changed = {a.host for a in actions if a.host is not None}
    new_cli = current.cli_env if cli_env is None else cli_env
    for address, machine in new.items():
        if address in old and address not in changed:
            keys = _env_changes(applied, old[address], current.cli_env, desired, machine, new_cli)
            if keys:
                actions.append(Action("rerender", host=address, reason=f"env changed: {', '.join(keys)}"))
    return actions or [Action("noop", reason="the cluster matches its state")]


def _check_master0(applied: Cluster, desired: Cluster, new: Mapping[str, Machine]) -> None:
    master0 = applied.master0.address
    if master0 not in new:
        raise ClusterfileError(f"master0 machine cannot be deleted ({master0} is not in the Clusterfile)",
                               f"cluster {desired.name}")
    if desired.master0.address != master0:
        raise ClusterfileError(f"master0 cannot change from {master0} to {desired.master0.address}: "
                               "keep it the first master", f"cluster {desired.name}")


def _hosts(old: Mapping[str, Machine], new: Mapping[str, Machine]) -> list[Action]:
    removed, added = [], []
    for address, machine in old.items():
        if address not in new:
            removed.append(Action("remove_host", host=address, reason="not in the Clusterfile any more"))
        elif role_set(machine.roles) != role_set(new[address].roles):
            before, after = (",".join(sorted(role_set(m.roles))) for m in (machine, new[address]))
            roles = f"roles {before} -> {after}"
            removed.append(Action("remove_host", host=address, reason=roles))
            added.append(Action("add_host", host=address, reason=roles))
    for address, machine in new.items():
        if address not in old:
            added.append(Action("add_host", host=address, reason=f"new {'/'.join(sorted(role_set(machine.roles)))}"))
    return removed + added


def _images(applied: Cluster, desired: Cluster, current: ClusterState) -> list[Action]:
    wanted = set(desired.images)
    have = set(applied.images)
    out = []
    for i, image in enumerate(applied.images):
        if image in wanted:
            continue
        record = current.images.get(image)
        is_rootfs = record.type == TYPE_ROOTFS if record and record.type else i == 0
        if is_rootfs:
            raise ClusterfileError(f"rootfs image {image} cannot be removed from a running cluster "
                                   f"(reset cluster {desired.name} and run it again)", f"cluster {desired.name}")
        out.append(Action("remove_image", image=image, reason="not in the Clusterfile any more"))
    out += [Action("add_image", image=image, reason="new image") for image in desired.images if image not in have]
    return out


def _env_changes(applied: Cluster, old: Machine, old_cli: Mapping[str, str], desired: Cluster, new: Machine,
                 new_cli: Mapping[str, str]) -> list[str]:
    """Names of the variables whose effective value differs between the last run and this one."""
    before = effective_env(None, applied.env, old.env, old_cli)
    after = effective_env(None, desired.env, new.env, new_cli)
    if before == after:
        return []
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

"""imgbuild: build, ship and run cluster images.

The library is usable without the CLI: :mod:`imgbuild.api` has the one-call
verbs (build, pull, push, inspect, mount, ...), :mod:`imgbuild.errors` the one
error tree. The CLI in :mod:`imgbuild.cli` is a thin layer over both. The map,
lower layers first::

    errors labels home      the error tree; the contract names; Home, every path imgbuild owns
    reference fsutil locks  image references; atomic files and trees; cross-process file locks
    scratch progress        owned temp dirs; the started/advanced/finished progress protocol
    kubefile/ gotemplate/   Kubefile grammar -> instructions, with line numbers; Go templates
    oci/                    the OCI model and where images live: store, archive, registry, registry/ dir
    builder/                Kubefile + context -> image (plan, native, buildah, images discovery)
    rootfs/                 an image as a file tree: mount, unpacked-layer cache, commit, diff
    cluster/                the desired state: Clusterfile, hosts, env, configs, state
    engine/                 making hosts match it: exec (the Executor seam), ssh, transfer, phases
    infra/                  local hosts to run on (network-namespace sandboxes)
    api                     one-call verbs over all of the above: what the CLI calls
    cli/                    typer commands; edge.py makes the Home, store and executor they pass down

Nothing below ``cli/`` reads ``$IMGBUILD_HOME`` or reaches for a global
executor: a :class:`~imgbuild.home.Home` and an
:class:`~imgbuild.engine.exec.Executor` are passed in (a Store carries its Home).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""The one error tree of imgbuild.

Every error the library raises on purpose is an ``ImgbuildError``; each class
carries the process exit code the CLI maps it to. Lower-level exceptions
(OSError, subprocess, requests, asyncssh, yaml) are translated at the
boundary where they happen, with ``raise SomeError(...) from exc``, so the
original stays reachable with ``--debug``.

::

    ImgbuildError                 exit 1   an operation failed
    ├── InputError                exit 2   bad usage or bad input
    │   ├── KubefileError                  Kubefile syntax or semantics (file:line:col)
    │   ├── InvalidReference               an image reference that does not parse
    │   ├── ImageNotFound                  no such image in the store / registry
    │   ├── ContextError                   build context: missing source, path escape
    │   ├── UnsafePathError                a tar entry or path that escapes its root
    │   └── ClusterfileError               invalid Clusterfile / Config document
    ├── StoreError                         local store unreadable, locked or corrupt
    │   └── DigestMismatch                 content does not hash to its digest
    ├── RegistryError                      a registry refused or failed a request
    │   └── AuthError                      credentials missing or refused
    ├── BuildError                         a build step failed
    ├── MountError                         mount/umount failed
    ├── ToolMissing                        an external tool (buildah, registry) is absent
    ├── HostUnreachable                    SSH connect/login to host:port failed, or its host key changed
    └── CommandFailed                      a subprocess/remote command exited non-zero
    Interrupted                   exit 130 Ctrl-C (not an ImgbuildError subclass)
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "ImgbuildError",
    "InputError",
    "KubefileError",
    "InvalidReference",
    "ImageNotFound",
    "ContextError",
    "UnsafePathError",
    "ClusterfileError",
    "StoreError",
    "DigestMismatch",
    "RegistryError",
    "AuthError",
    "BuildError",
    "MountError",
    "ToolMissing",
    "HostUnreachable",
    "CommandFailed",
    "Interrupted",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ImgbuildError(Exception):
    """An operation failed; ``where`` names the file, host or image concerned."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.message} ({self.where})" if self.where else self.message


class InputError(ImgbuildError):
    """Bad usage or bad input: the user can fix it by changing what they gave."""

    exit_code = EXIT_USAGE


class KubefileError(InputError):
    """A Kubefile that does not parse or validate; points at file:line:col."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
    ) -> None:
        where = None
        if file is not None or line is not None:
            where = f"{file or '<kubefile>'}:{line if line is not None else '?'}"
            if column is not None:
                where += f":{column}"
        super().__init__(message, where)
        self.file = file
        self.line = line
        self.column = column
        self.source_line = source_line

    def detail(self) -> str:
        """The offending line with a caret under the column, or '' if unknown."""
        if self.source_line is None:
            return ""
        caret = " " * max((self.column or 1) - 1, 0) + "^"
        return f"    {self.source_line}\n    {caret}"


class InvalidReference(InputError):
    """An image reference that cannot be parsed."""


class ImageNotFound(InputError):
    """The named image is not in the local store (or the registry)."""


class ContextError(InputError):
    """A build-context problem: missing source, ignored file, path escape."""


class UnsafePathError(InputError):
    """A path (tar entry, link target, COPY source) that would escape its root."""


class ClusterfileError(InputError):
    """An invalid Clusterfile or Config document."""


class StoreError(ImgbuildError):
    """The local store cannot be read or written as asked."""


class DigestMismatch(StoreError):
    """Content whose hash differs from the digest it was announced with."""

    def __init__(self, expected: str, actual: str, where: str | None = None) -> None:
        super().__init__(f"digest mismatch: expected {expected}, got {actual}", where)
        self.expected = expected
        self.actual = actual


class RegistryError(ImgbuildError):
    """A registry refused or failed a request."""

    def __init__(self, message: str, where: str | None = None, status: int | None = None) -> None:
        super().__init__(message, where)
        self.status = status


class AuthError(RegistryError):
    """Credentials were missing or refused by a registry."""


class BuildError(ImgbuildError):
    """A build step failed."""


class MountError(ImgbuildError):
    """Mounting or unmounting an image failed."""


class ToolMissing(ImgbuildError):
    """An external program imgbuild needs is not installed."""

    def __init__(self, tool: str, hint: str | None = None) -> None:
        msg = f"{tool} is not installed"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg, None)
        self.tool = tool


class HostUnreachable(ImgbuildError):
    """A host could not be reached or logged in to over SSH (or refused for a changed host key); names host:port."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)  # the message names host:port itself
        self.host = host


class CommandFailed(ImgbuildError):
    """A command exited non-zero; carries its evidence (command, code, output tail, host)."""

    def __init__(self, result: "object", message: str | None = None) -> None:
        self.result = result
        cmd = getattr(result, "command_line", lambda: "?")()
        code = getattr(result, "exit_code", "?")
        host = getattr(result, "host", None)
        msg = message or f"command failed with exit code {code}: {cmd}"
        tail = getattr(result, "tail", lambda n=5: "")()
        if tail:
            msg += "\n" + tail
        super().__init__(msg, host)


class Interrupted(Exception):
    """The user pressed Ctrl-C; exit 130 after cleaning up."""

    exit_code = EXIT_INTERRUPTED

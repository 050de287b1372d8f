"""The functions helm gives charts beyond :mod:`imgbuild.gotemplate`'s sprig subset.

These are the ones a chart needs to *render* but that a ``*.tmpl`` in a cluster
image has no business calling, so they live with the chart renderer, not in
the template engine: ``lookup`` (no cluster: always an empty map, as
``helm template``), the clock (``now``, ``date``, ``dateInZone``, ``unixEpoch``,
``htmlDate``), certificates and keys made with ``cryptography`` as sprig makes
them (``genCA``, ``genSelfSignedCert``, ``genSignedCert``, ``genPrivateKey``),
path functions (``base``, ``dir``, ``ext``, ``clean``, ``isAbs``), float math
(``divf``, ``maxf``, ``minf``, ``round``...), ``htpasswd`` (bcrypt), ``urlParse``,
``wrap`` and the like, and sprig's ``must*`` spellings of the functions the engine has.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import math
import os
import posixpath
import random
import re
import textwrap
import urllib.parse
from collections.abc import Callable, Mapping

from imgbuild.gotemplate import FuncError, gofunc
from imgbuild.gotemplate.sprig_convert import to_float

__all__ = ["HELM_FUNCS", "GoTime", "go_date"]

_LAYOUT = re.compile(r"2006|January|Jan|Monday|Mon|MST|Z07:00|Z0700|-07:00|-0700|-07|\.0+|\.9+|"
                     r"01|02|_2|15|03|04|05|06|PM|pm|1|2|3|4|5")


class GoTime:
    """A ``time.Time`` for templates: prints as Go does; ``Unix``, ``Format``, ``UTC``, ``Year`` methods."""

    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def Unix(self) -> int:  # noqa: N802 - Go method names
        """Seconds since the epoch."""
        return int(self.t.timestamp())

    def Format(self, layout: str) -> str:  # noqa: N802
        """The time in Go ``layout`` form."""
        return go_date(layout, self.t)

    def UTC(self) -> "GoTime":  # noqa: N802
        """The same instant in UTC."""
        return GoTime(self.t.astimezone(dt.timezone.utc))

    def Year(self) -> int:  # noqa: N802
        """The year."""
        return self.t.year

    def __str__(self) -> str:
        return go_date("2006-01-02 15:04:05.999999999 -0700 MST", self.t)


def _token(tok: str, t: dt.datetime) -> str:
    fixed = {
        "2006": f"{t.year:04d}", "06": f"{t.year % 100:02d}", "January": t.strftime("%B"), "Jan": t.strftime("%b"),
        "01": f"{t.month:02d}", "1": str(t.month), "Monday": t.strftime("%A"), "Mon": t.strftime("%a"),
        "02": f"{t.day:02d}", "_2": f"{t.day:2d}", "2": str(t.day), "15": f"{t.hour:02d}",
        "03": f"{(t.hour % 12) or 12:02d}", "3": str((t.hour % 12) or 12), "04": f"{t.minute:02d}",
        "4": str(t.minute), "05": f"{t.second:02d}", "5": str(t.second), "PM": "PM" if t.hour >= 12 else "AM",
        "pm": "pm" if t.hour >= 12 else "am", "MST": t.tzname() or "UTC",
    }
    if tok in fixed:
        return fixed[tok]
    if tok.startswith((".0", ".9")):
        digits = f"{t.microsecond:06d}000"[: len(tok) - 1]
        return "." + digits if tok[1] == "0" else ("." + digits.rstrip("0") if digits.strip("0") else "")
    off = t.utcoffset() or dt.timedelta(0)
    if tok.startswith("Z") and not off:
        return "Z"
    mins = int(off.total_seconds() // 60)
    sign, mins = ("-" if mins < 0 else "+"), abs(mins)
    hh, mm = divmod(mins, 60)
    sep = ":" if ":" in tok else ""
    return f"{sign}{hh:02d}" if tok == "-07" else f"{sign}{hh:02d}{sep}{mm:02d}"


def go_date(layout: str, t: dt.datetime) -> str:
    """``t`` formatted with a Go reference-time layout (``2006-01-02T15:04:05Z07:00``)."""
    return _LAYOUT.sub(lambda m: _token(m.group(0), t), layout)


def _as_time(v: object, zone: dt.tzinfo | None = None) -> dt.datetime:
    if isinstance(v, GoTime):
        t = v.t
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        t = dt.datetime.fromtimestamp(v, dt.timezone.utc)
    else:
        t = dt.datetime.now(dt.timezone.utc)
    return t.astimezone(zone or dt.timezone.utc)


def _zone(name: str) -> dt.tzinfo:
    if name in ("", "UTC", "utc"):
        return dt.timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:
        return dt.timezone.utc


class _Certificate:
    """What sprig's cert functions return: ``.Cert`` and ``.Key`` in PEM."""

    def __init__(self, cert: str, key: str, objects: tuple = ()) -> None:
        self.Cert, self.Key, self._objects = cert, key, objects


def _names(items: object) -> list[str]:
    return [str(x) for x in items] if isinstance(items, (list, tuple)) else []


def _make_cert(cn: str, ips: object, dns: object, days: object, ca: _Certificate | None, is_ca: bool) -> _Certificate:
    """An RSA-2048 certificate as sprig makes it: self-signed, a CA, or signed by ``ca``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(cn))])
    issuer, signer = (ca._objects[0].subject, ca._objects[1]) if ca is not None and ca._objects else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=int(float(days or 365)))))
    builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    alt = [x509.DNSName(n) for n in _names(dns)] + [x509.IPAddress(ipaddress.ip_address(i)) for i in _names(ips)]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return _Certificate(pem, key_pem, (cert, key))


def _custom_cert(b64cert: str, b64key: str) -> _Certificate:
    """sprig's buildCustomCert: a certificate object from a base64 PEM certificate and key."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        cert, key = base64.b64decode(b64cert), base64.b64decode(b64key)
        objects = (x509.load_pem_x509_certificate(cert), load_pem_private_key(key, None))
    except ValueError as exc:
        raise FuncError(f"error parsing certificate or key: {exc}") from exc
    return _Certificate(cert.decode(), key.decode(), objects)


def _gen_private_key(kind: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if kind == "rsa":
        key, fmt = rsa.generate_private_key(65537, 4096), serialization.PrivateFormat.TraditionalOpenSSL
    elif kind == "ecdsa":
        key, fmt = ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL
    elif kind == "ed25519":
        key, fmt = ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8
    else:
        raise FuncError(f"unknown private key type {kind!r} (rsa, ecdsa, ed25519)")
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def _round(a: object, places: object, on: object = 0.5) -> float:
    """sprig's round: to ``places`` decimals, rounding up from ``on`` (default .5)."""
    pow10 = 10 ** to_float(places)
    digit = to_float(a) * pow10
    frac = digit - math.trunc(digit)
    return (math.ceil(digit) if frac >= to_float(on) else math.floor(digit)) / pow10


def _htpasswd(user: str, password: str) -> str:
    """An htpasswd line with a bcrypt hash (cost 10), as sprig writes it."""
    if ":" in user:
        return f"invalid username: {user}"
    try:
        import bcrypt
    except ImportError as exc:  # pragma: no cover - bcrypt is a dependency
        raise FuncError("htpasswd needs the bcrypt package") from exc
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(10, prefix=b'2a')).decode()}"


def _url_parse(text: str) -> dict[str, str]:
    u = urllib.parse.urlsplit(text)
    userinfo = u.netloc.rpartition("@")[0]
    return {"scheme": u.scheme, "host": u.netloc.rpartition("@")[2], "path": u.path, "query": u.query,
            "opaque": "", "fragment": u.fragment, "userinfo": userinfo}


def _url_join(d: Mapping) -> str:
    netloc = f"{d.get('userinfo')}@{d.get('host', '')}" if d.get("userinfo") else str(d.get("host", ""))
    return urllib.parse.urlunsplit((str(d.get("scheme", "")), netloc, str(d.get("path", "")),
                                    str(d.get("query", "")), str(d.get("fragment", ""))))


def _abbrevboth(left: int, right: int, s: str) -> str:
    """goutils AbbreviateFull: ``...`` on both sides around an offset (as sprig's abbrevboth)."""
    if right < 4 or len(s) <= right:
        return s
    left = max(0, min(left, len(s)))
    if len(s) - left < right - 3:
        left = len(s) - (right - 3)
    if left <= 4:
        return s[: right - 3] + "..."
    if right < 7:
        return s
    if left + right - 3 < len(s):
        return "..." + _abbrevboth(0, right - 3, s[left:])
    return "..." + s[len(s) - (right - 3):]


def _chunk(size: object, items: object) -> list:
    n = int(float(size))  # type: ignore[arg-type]
    seq = list(items) if isinstance(items, (list, tuple)) else []
    return [seq[i:i + n] for i in range(0, len(seq), n)] if n > 0 else []


_OWN: dict[str, Callable] = {
    "lookup": gofunc("string", "string", "string", "string")(lambda *_: {}),
    "now": gofunc()(lambda: GoTime(dt.datetime.now(dt.timezone.utc))),
    "date": gofunc("string", "any")(lambda fmt, t: go_date(fmt, _as_time(t))),
    "dateInZone": gofunc("string", "any", "string")(lambda fmt, t, z: go_date(fmt, _as_time(t, _zone(z)))),
    "htmlDate": gofunc("any")(lambda t: go_date("2006-01-02", _as_time(t))),
    "unixEpoch": gofunc("any")(lambda t: str(int(_as_time(t).timestamp()))),
    "genCA": gofunc("string", "any")(lambda cn, days: _make_cert(cn, [], [], days, None, True)),
    "genSelfSignedCert": gofunc("string", "any", "any", "any")(
        lambda cn, ips, dns, days: _make_cert(cn, ips, dns, days, None, False)),
    "genSignedCert": gofunc("string", "any", "any", "any", "any")(
        lambda cn, ips, dns, days, ca: _make_cert(cn, ips, dns, days, ca, False)),
    "genPrivateKey": gofunc("string")(_gen_private_key),
    "buildCustomCert": gofunc("string", "string")(_custom_cert),
    "base": gofunc("string")(posixpath.basename), "dir": gofunc("string")(lambda p: posixpath.dirname(p) or "."),
    "ext": gofunc("string")(lambda p: posixpath.splitext(p)[1]), "clean": gofunc("string")(posixpath.normpath),
    "isAbs": gofunc("string")(lambda p: p.startswith("/")),
    "randInt": gofunc("int", "int")(lambda a, b: random.randrange(a, b)),
    "chunk": gofunc("any", "any")(_chunk),
    "divf": gofunc("any", variadic="any")(lambda a, *v: functools.reduce(lambda x, y: x / to_float(y), v, to_float(a))),
    "add1f": gofunc("any")(lambda a: to_float(a) + 1),
    "maxf": gofunc("any", variadic="any")(lambda a, *v: max([to_float(a), *map(to_float, v)])),
    "minf": gofunc("any", variadic="any")(lambda a, *v: min([to_float(a), *map(to_float, v)])),
    "round": gofunc("any", "any", variadic="any")(_round),
    "toDecimal": gofunc("any")(lambda v: int(str(v), 8) if re.fullmatch(r"[0-7]+", str(v)) else 0),
    "initials": gofunc("string")(lambda s: "".join(w[0] for w in s.split())),
    "swapcase": gofunc("string")(str.swapcase),
    "shuffle": gofunc("string")(lambda s: "".join(random.sample(s, len(s)))),
    "abbrevboth": gofunc("int", "int", "string")(_abbrevboth),
    "wrap": gofunc("int", "string")(lambda n, s: textwrap.fill(s, n, break_long_words=False, break_on_hyphens=False)),
    "wrapWith": gofunc("int", "string", "string")(
        lambda n, sep, s: sep.join(textwrap.wrap(s, n, break_long_words=False, break_on_hyphens=False))),
    "urlParse": gofunc("string")(_url_parse), "urlJoin": gofunc("map")(_url_join),
    "randBytes": gofunc("int")(lambda n: base64.b64encode(os.urandom(n)).decode()),
    "htpasswd": gofunc("string", "string")(_htpasswd),
}


def _must_aliases(base: Mapping[str, Callable]) -> dict[str, Callable]:
    """``mustX`` for every function ``x`` the engine has (sprig's error-returning spellings)."""
    return {f"must{name[0].upper()}{name[1:]}": fn for name, fn in base.items() if name[:1].islower()}


def _build() -> dict[str, Callable]:
    from imgbuild.gotemplate.sprig import SPRIG

    return {**_must_aliases({**SPRIG, **_OWN}), **_OWN}


HELM_FUNCS: dict[str, Callable] = _build()
"""Functions added to every chart's template set (``include``/``tpl``/``required`` come per render)."""

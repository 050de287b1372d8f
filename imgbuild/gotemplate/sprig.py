"""The function map every template gets: sprig's common functions plus helm's toYaml/fromYaml/required.

Go's own builtins (and, eq, printf ...) live in :mod:`builtins` (sprig's
``slice``, lists only, shadows Go's as it does in helm and sealos); helm's
``include``, ``tpl`` and ``lookup`` need a chart and a template set, so the
chart renderer adds them with ``Template.funcs``. Deliberately absent: sprig's
clock (``now``, ``date``), crypto key generation (``genCA``...), ``env``/``expandenv``
(a template must not read imgbuild's own environment) and network functions.
"""

from __future__ import annotations

from imgbuild.gotemplate.sprig_convert import CONVERT_FUNCS
from imgbuild.gotemplate.sprig_data import DATA_FUNCS
from imgbuild.gotemplate.sprig_strings import STRING_FUNCS

__all__ = ["SPRIG"]

SPRIG = {**STRING_FUNCS, **DATA_FUNCS, **CONVERT_FUNCS}

"""Attack names as configs and re-evaluations give them (``clean``, ``fgsm``, ``pgd20``, ``cw100``, ``autoattack``),
parsed without importing torch: a sweep validates every trial's final attacks before anything heavy loads."""

from __future__ import annotations

import re

ATTACK_FORMS = ("clean", "fgsm", "pgd<k>", "cw<k>", "autoattack")
_STEPS_ATTACK = re.compile(r"(pgd|cw)([1-9][0-9]*)")


def parse_attack(name: str) -> tuple[str, int]:
    """``"pgd20"`` -> ``("pgd", 20)``, ``"cw100"`` -> ``("cw", 100)``, ``"fgsm"`` -> ``("fgsm", 1)`` (one step of eps
    from x, no random start: Goodfellow et al., BiaMAT appendix Table 6's attack), ``"clean"``/``"autoattack"`` ->
    ``(name, 0)``.

    Raises ``ValueError`` listing the valid forms, so a config can be checked before any data loads.
    """
    if name in ("clean", "autoattack"):
        return name, 0
    if name == "fgsm":
        return name, 1
    match = _STEPS_ATTACK.fullmatch(name)
    if match is None:
        raise ValueError(f"unknown attack {name!r}; valid forms: {', '.join(ATTACK_FORMS)} (k >= 1 steps)")
    return match.group(1), int(match.group(2))

"""What a third party verifying a certificate is shown of the volunteer: the name masked."""

from __future__ import annotations


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 张科普 → 张*普, 欧阳娜娜 → 欧**娜: the first and (from three characters) the last stay."""
    if not name:
        return None
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]

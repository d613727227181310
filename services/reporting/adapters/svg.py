"""Charts as hand-written SVG with Chinese labels (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

FONT = "font-family=\"'Noto Sans CJK SC','Microsoft YaHei','SimHei',sans-serif\""


def _svg(width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}>' + "".join(body) + "</svg>"
    )


def headcount(rows: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars: registered volunteers of each city detachment against its first-batch minimum."""
    label_w, bar_w, row_h, top = 220, 420, 28, 60
    scale_max = max([int(r["minimum"] or 0) for r in rows] + [int(r["volunteers"]) for r in rows] + [1])
    height = top + row_h * max(len(rows), 1) + 40
    body = [
        '<text x="20" y="30" font-size="18">各市科技志愿者支队注册人数与首批最低人数</text>',
        f'<text x="{label_w}" y="50" font-size="12" fill="#555">蓝色：已注册；红线：首批最低人数</text>',
    ]
    for i, row in enumerate(rows):
        y = top + i * row_h
        have, minimum = int(row["volunteers"]), int(row["minimum"] or 0)
        w = bar_w * have / scale_max
        colour = "#2e7d32" if have >= minimum else "#1f77b4"
        body.append(f'<text x="20" y="{y + 18}" font-size="13">{escape(str(row["name"]))}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="18" fill="{colour}"/>')
        mx = label_w + bar_w * minimum / scale_max
        body.append(f'<line x1="{mx:.1f}" y1="{y}" x2="{mx:.1f}" y2="{y + row_h}" stroke="#d62728" stroke-width="2"/>')
        body.append(
            f'<text x="{label_w + bar_w + 10}" y="{y + 18}" font-size="12">{have}/{minimum}人'
            f"{'（已达标）' if have >= minimum else f'（尚差{minimum - have}人）'}</text>"
        )
    if not rows:
        body.append(f'<text x="20" y="{top + 18}" font-size="13">暂无市级支队数据</text>')
    return _svg(label_w + bar_w + 160, height, body)


def quota_heatmap(rows: Sequence[Mapping[str, Any]], quarters: Sequence[int], year: int) -> str:
    """Units × quarters: activities carried out per quarter (red: none yet, green shades: one or more)."""
    label_w, cell_w, row_h, top = 260, 90, 26, 70
    height = top + row_h * max(len(rows), 1) + 30
    body = [
        f'<text x="20" y="30" font-size="18">{year}年各队伍季度活动开展情况</text>',
        '<text x="20" y="50" font-size="12" fill="#555">数字为已开展活动次数；红色：尚未开展</text>',
    ]
    for j, quarter in enumerate(quarters):
        x = label_w + j * cell_w
        body.append(
            f'<text x="{x + cell_w / 2}" y="{top - 6}" font-size="13" text-anchor="middle">第{quarter}季度</text>'
        )
    for i, row in enumerate(rows):
        y = top + i * row_h
        body.append(f'<text x="20" y="{y + 17}" font-size="12">{escape(str(row["name"]))}</text>')
        for j, quarter in enumerate(quarters):
            n = int(row["quarters"].get(str(quarter), 0))
            colour = "#f4cccc" if n == 0 else ("#b6d7a8" if n == 1 else "#6aa84f" if n < 4 else "#38761d")
            x = label_w + j * cell_w
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{row_h - 2}" fill="{colour}"/>'
                f'<text x="{x + cell_w / 2}" y="{y + 17}" font-size="12" text-anchor="middle">{n}</text>'
            )
    return _svg(label_w + cell_w * len(quarters) + 20, height, body)

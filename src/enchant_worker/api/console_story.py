"""The console's story pages: stories with their latest analysis, and one story's scores (a small bar
chart), the pacing curve (tension per scene, with chapter lengths), the enhancement rules that fired and
the suggestions. Server-rendered SVG, like the other console charts (`console.line_chart`)."""

from __future__ import annotations

from typing import Any

from enchant_worker.api.console import e, line_chart, table, when

SCORES = (
    "overall",
    "narrative_coherence",
    "visual_potential",
    "character_development",
    "pacing",
    "emotional_impact",
)


def stories_section(rows: list[dict[str, Any]]) -> str:
    body = [
        (
            f'<a href="/dashboard/stories/{r["id"]}">{e(r["title"])}</a>',
            e(r["owner"]),
            str(r["chapters"]),
            f"{r['overall']:.2f}" if r["overall"] is not None else "not analysed",
            when(r["analysed_at"]),
        )
        for r in rows
    ]
    return (
        '<section class="wide"><h2>Stories</h2>'
        + table(
            ("story", "owner", "chapters", "overall", "analysed"), body, empty="no stories", numeric=(2, 3)
        )
        + "</section>"
    )


def score_chart(scores: dict[str, float]) -> str:
    """Horizontal bars, one per score (0-1), labelled with the value."""
    width, row, left, right = 640, 24, 170, 50
    height = row * len(SCORES) + 22
    plot_w = width - left - right
    parts = []
    for i, name in enumerate(SCORES):
        value = float(scores.get(name, 0.0))
        y = 6 + i * row
        parts.append(
            f"<g><title>{e(name)}: {value:.2f}</title>"
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{e(name.replace("_", " "))}</text>'
            f'<rect class="{"ok" if value >= 0.6 else "bad"}" x="{left}" y="{y}" '
            f'width="{plot_w * value:.1f}" height="{row - 8}"/>'
            f'<text x="{left + plot_w * value + 4:.1f}" y="{y + 13}">{value:.2f}</text></g>'
        )
    for frac in (0, 0.5, 1):
        x = left + plot_w * frac
        parts.append(
            f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 16}" class="grid"/>'
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{frac:g}</text>'
        )
    label = ", ".join(f"{n.replace('_', ' ')} {float(scores.get(n, 0)):.2f}" for n in SCORES)
    return (
        f'<svg class="chart" id="scores" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="scores from 0 to 1: {e(label)}">{"".join(parts)}</svg>'
        '<p class="legend"><span class="key ok"></span> 0.6 or more <span class="key bad"></span> under 0.6</p>'
    )


def story_page(story: dict[str, Any], document: dict[str, Any] | None, stale: bool) -> str:
    head = f'<section class="wide"><p>{e(story["title"])} · owner {e(story["owner"])} · story {e(story["id"])}</p>'
    if document is None:
        return head + (
            '<p class="muted">not analysed yet: <code>enchant-worker analyze '
            f"{e(story['id'])}</code> or <code>POST /v1/stories/{e(story['id'])}/analyze</code></p></section>"
        )
    insights, pacing, enhancement = document["insights"], document["pacing"], document["enhancement"]
    counts = insights["counts"]
    source = document["analyzer"] + (f" ({document['text_model']})" if document.get("text_model") else "")
    out = [
        head,
        f"<p>{counts['chapters']} chapter(s), {counts['scenes']} scene(s), {counts['words']} words, "
        f"{counts['characters']} character(s) · analysed {when_text(document['computed_at'])} by {e(source)}</p>",
    ]
    if stale:
        out.append(
            '<p class="alert" role="alert">The story changed since this analysis: its figures are of the '
            "text as it was. Analyse it again.</p>"
        )
    if insights.get("tentative_scenes"):
        out.append(
            f'<p class="note">{insights["tentative_scenes"]} scene score(s) come from the llm with its own '
            "confidence: estimates, not measurements.</p>"
        )
    out.append("<h2>Scores</h2>" + score_chart(insights["scores"]) + "</section>")
    # pacing curve
    curve = pacing["tension_curve"]
    points = [(float(i + 1), float(p["tension"])) for i, p in enumerate(curve)]
    chapters = ", ".join(f"{c['chapter']}: {c['words']} words" for c in pacing["chapter_words"])
    out.append(
        '<section class="wide"><h2>Pacing</h2>'
        + line_chart(points, x_label="scene, in story order", y_label="tension (0-1)", name="pacing-curve")
        + f"<p>chapters — {e(chapters) or 'none'}; tension range {pacing['tension_range']:.2f}"
        + (" (flat)" if pacing["flat_tension"] else "")
        + "</p>"
    )
    if pacing["pacing_inconsistencies"]:
        out.append(
            table(
                ("chapter", "words", "ratio to median", "why"),
                [
                    (str(i["chapter"]), str(i["words"]), f"{i['ratio']:.2f}", e(i["reason"]))
                    for i in pacing["pacing_inconsistencies"]
                ],
                numeric=(1, 2),
            )
        )
    out.append("</section>")
    # enhancement and suggestions
    rules = [
        (
            e(s["priority"]),
            e(s["type"]),
            e(s["suggestion"]),
            e(", ".join(_where(w) for w in s.get("specific_scenes") or s.get("specific_chapters") or [])),
        )
        for s in enhancement["suggestions"]
    ]
    out.append(
        f'<section class="wide"><h2>Enhancement (overall {enhancement["overall_score"]:.2f})</h2>'
        + table(("priority", "type", "suggestion", "where"), rules, empty="no rule fired")
        + f'<p class="muted">{e(enhancement["auto_fixes_note"])}</p>'
    )
    if enhancement["auto_fixes"]:
        out.append(
            table(
                ("scene", "proposed edit", "confidence"),
                [
                    (_where(f), e(f["text"]), f"{f['confidence']} (not certain)")
                    for f in enhancement["auto_fixes"]
                ],
            )
        )
    found = document["suggestions"]
    rows = [
        (
            _where(s),
            e(s["type"]),
            e(f"{s['description']}. {s['suggested_content']}"),
            f"{s['confidence']:.2f}",
            e("; ".join(s["reasoning"])),
        )
        for s in found["scenes"]
    ]
    rows += [
        (
            e(s["character"]),
            e(s["type"]),
            e(f"{s['description']}. {s['suggested_content']}"),
            f"{s['confidence']:.2f}",
            e("; ".join(s["reasoning"])),
        )
        for s in found["characters"]
    ]
    rows += [
        (
            "plot",
            e(s["type"]),
            e(f"{s['description']}. {s['suggested_content']}"),
            f"{s['confidence']:.2f}",
            e("; ".join(s["reasoning"])),
        )
        for s in found["plot"]
    ]
    out.append(
        "<h2>Suggestions</h2>"
        + table(
            ("where", "type", "suggestion", "confidence", "why"), rows, empty="no suggestions", numeric=(3,)
        )
        + "</section>"
    )
    scenes = [
        (
            _where(s),
            f"{s['overall']:.2f}",
            "measured" if s["certain"] else f"llm, confidence {s['confidence']}",
        )
        for s in document["scenes"]
    ]
    out.append(
        '<section class="wide"><h2>Scenes</h2>'
        + table(("scene", "overall", "source"), scenes, numeric=(1,))
        + "</section>"
    )
    return "".join(out)


def when_text(value: str) -> str:
    return e(value.replace("T", " ")[:19] + " UTC")


def _where(item: dict[str, Any]) -> str:
    return e(f"ch{item['chapter']}" + (f".{item['scene']}" if item.get("scene") is not None else ""))

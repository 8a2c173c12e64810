"""User CSS is made safe; titles become file names every file system accepts."""

from __future__ import annotations

import pytest

from enchant_worker.export.css import sanitize
from enchant_worker.export.names import ascii_filename, safe_filename


@pytest.mark.parametrize(
    "css, gone",
    [
        ("@import url(http://evil.example/x.css); p { color: red }", ["@import", "evil"]),
        ('@import "https://evil.example/x.css"; p { color: red }', ["@import", "evil"]),
        ("p { background: url(https://tracker.example/p.png) }", ["tracker", "url("]),
        ("p { background: url('//tracker.example/p.png') }", ["tracker"]),
        ("p { width: expression(alert(1)) }", ["expression"]),
        ("p { color: red } </style><script>alert(1)</script>", ["</style", "<script", "alert"]),
        ("p { behavior: url(x.htc); -moz-binding: url(x.xml#y) }", ["behavior", "binding", "x.htc"]),
        ("p { background: url(javascript:alert(1)) }", ["javascript"]),
        ("@\\69mport url(http://evil.example/x.css);", ["url(http"]),
        ("p { color: red } <!-- --> /* </style> */", ["<!--", "</style"]),
    ],
)
def test_unsafe_css_is_stripped_with_a_note(css, gone):
    clean, removed = sanitize(css)
    for text in gone:
        assert text not in clean, (text, clean)
    assert removed


def test_safe_css_is_kept_as_written():
    css = "body { font-family: Georgia, serif; } figure.panel { border: 2px solid #000; }"
    assert sanitize(css) == (css, [])
    data = "p { background: url(data:image/png;base64,iVBORw0KGgo=) }"
    assert sanitize(data) == (data, [])
    assert sanitize(None) == ("", [])


@pytest.mark.parametrize(
    "title, name",
    [
        ("The Lantern River", "The Lantern River.pdf"),
        ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j.pdf"),
        ("  ..hidden  ", "hidden.pdf"),
        ("CON", "CON_.pdf"),
        ("", "story.pdf"),
        ("Ünïcode — 夜の川", "Ünïcode — 夜の川.pdf"),
        ("x" * 300, "x" * 120 + ".pdf"),
        ("tab\tand\nnewline", "tab_and_newline.pdf"),
    ],
)
def test_safe_filename(title, name):
    assert safe_filename(title, ".pdf") == name


def test_ascii_fallback():
    assert ascii_filename("Ünïcode — 夜の川.pdf") == "Unicode .pdf"
    assert ascii_filename("夜の川") == "export"

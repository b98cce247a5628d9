"""ANSI colours in build logs as HTML: SGR codes become spans with classes, the text escaped.

Only the 16 colours, bold, italic and underline are kept (classes in app.css, since the CSP
allows no inline style); 256-colour and true-colour codes fall back to the default colour, and
every other escape sequence (cursor moves, erase line, titles) is dropped.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# CSI sequences (ESC [ params final) and OSC ones (ESC ] ... BEL or ESC \), and lone ESCs.
_ESCAPES = re.compile(r"\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _apply(codes: list[int], style: dict[str, str]) -> None:
    index = 0
    while index < len(codes):
        code = codes[index]
        if code == 0:
            style.clear()
        elif code == 1:
            style["bold"] = "ansi-bold"
        elif code == 3:
            style["italic"] = "ansi-italic"
        elif code == 4:
            style["underline"] = "ansi-underline"
        elif code == 22:
            style.pop("bold", None)
        elif code == 23:
            style.pop("italic", None)
        elif code == 24:
            style.pop("underline", None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style["fg"] = f"ansi-fg-{code}"
        elif code == 39:
            style.pop("fg", None)
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style["bg"] = f"ansi-bg-{code}"
        elif code == 49:
            style.pop("bg", None)
        elif code in (38, 48) and index + 1 < len(codes):
            # 38;5;n or 38;2;r;g;b: skip the colour's arguments, keep the default colour.
            index += 2 if codes[index + 1] == 5 else 4
        index += 1


def ansi_html(text: str) -> Markup:
    """The text with its SGR colours as spans; everything else escaped or dropped."""
    parts: list[str] = []
    style: dict[str, str] = {}
    position = 0

    def emit(chunk: str) -> None:
        chunk = _CONTROL.sub("", chunk)
        if not chunk:
            return
        if style:
            classes = " ".join(style[key] for key in sorted(style))
            parts.append(f'<span class="{classes}">{escape(chunk)}</span>')
        else:
            parts.append(str(escape(chunk)))

    for match in _ESCAPES.finditer(text):
        emit(text[position : match.start()])
        position = match.end()
        if match.group(2) == "m":
            params = match.group(1) or "0"
            codes = [int(part) if part.isdigit() else 0 for part in params.split(";")]
            _apply(codes, style)
    emit(text[position:])
    return Markup("".join(parts))

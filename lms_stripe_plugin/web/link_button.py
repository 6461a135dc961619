"""The button a school puts on its own website for a payment link: a plain link styled inline, which works with
no CSS or JavaScript of ours (it opens the link's page in a new tab), and an optional small script that opens
the page in a window of its own instead. Both are built from the configured public address."""
from __future__ import annotations

import json
from html import escape

#: Inline, so that the school's page needs nothing of ours; a system font, the plugin's accent colour.
BUTTON_STYLE = ("display:inline-block;padding:12px 24px;border-radius:6px;background:#4f46e5;color:#ffffff;"
                "font:600 16px/1.25 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;text-decoration:none")
#: The window the script opens: a phone-sized page, centred on the school's.
WINDOW = (480, 760)


def snippet(page_url: str, label: str) -> str:
    """The button's HTML: ``<a href=… style=…>label</a>``, every value escaped (quotes in attributes only)."""
    return (f'<a href="{escape(page_url)}" target="_blank" rel="noopener" '
            f'style="{escape(BUTTON_STYLE)}">{escape(label, quote=False)}</a>')


def script_tag(script_url: str) -> str:
    """The optional ``<script>`` element that makes the button open a window (put it after the button)."""
    return f'<script src="{escape(script_url)}" async></script>'


def script(page_url: str) -> str:
    """The script served at the link's ``button.js``: every link on the page whose address is the link's page
    opens it in a window of its own; where a window cannot be opened (a popup blocker), the link does what it
    does without the script."""
    width, height = WINDOW
    # json.dumps writes a JavaScript string literal; "</" is escaped so that the text never ends a <script>.
    address = json.dumps(page_url).replace("</", "<\\/")
    return _SCRIPT.replace("__PAGE__", address).replace("__WIDTH__", str(width)).replace("__HEIGHT__", str(height))


_SCRIPT = """(function () {
  "use strict";
  var page = __PAGE__, width = __WIDTH__, height = __HEIGHT__;
  function open(event) {
    if (event.defaultPrevented || event.button > 0 || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
    var left = Math.max(0, (window.screenX || 0) + ((window.outerWidth || width) - width) / 2);
    var top = Math.max(0, (window.screenY || 0) + ((window.outerHeight || height) - height) / 2);
    var popup = window.open(page, "lms_stripe_payment_link", "popup=yes,width=" + width + ",height=" + height +
                            ",left=" + Math.round(left) + ",top=" + Math.round(top));
    if (!popup) { return; }
    try { popup.opener = null; } catch (ignored) {}
    popup.focus();
    event.preventDefault();
  }
  function bind() {
    var anchors = document.getElementsByTagName("a");
    for (var i = 0; i < anchors.length; i++) {
      var anchor = anchors[i];
      if (anchor.getAttribute("href") === page && !anchor.hasAttribute("data-lms-stripe-bound")) {
        anchor.setAttribute("data-lms-stripe-bound", "");
        anchor.addEventListener("click", open);
      }
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", bind); } else { bind(); }
})();
"""

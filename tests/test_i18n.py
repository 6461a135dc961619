"""French and English ship: every string the plugin renders is in the catalogs, translated into French."""
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from lms_stripe_plugin.core.i18n import normalize_locale

from .conftest import as_user

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "lms_stripe_plugin" / "translations"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
METHODS = [("lms_stripe_plugin/sandbox/**", "ignore"), ("lms_stripe_plugin/demo/**", "ignore"),
           ("lms_stripe_plugin/**.py", "python"), ("lms_stripe_plugin/templates/**.html", "jinja2")]


def _source_msgids() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(locale):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as fp:
        return read_po(fp, locale=locale)


def test_every_string_in_the_sources_is_in_the_french_catalog():
    french = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog("fr") if m.id}
    missing = _source_msgids() - french
    assert not missing, f"run the commands at the top of babel.cfg; missing: {sorted(missing)[:10]}"


def test_french_translations_are_complete_and_keep_their_placeholders():
    for message in _catalog("fr"):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings) and not message.fuzzy, message.id
        wanted = set(re.findall(r"%\((\w+)\)s", " ".join(ids)))
        for string in strings:
            assert set(re.findall(r"%\((\w+)\)s", string)) <= wanted | {"num"}, (message.id, string)


def test_pages_follow_the_host_locale(client, host, people):
    host.locale = "fr_FR"
    page = client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)
    assert "Paramètres de paiement" in page and '<html lang="fr">' in page
    host.locale = "en"
    assert "Payment settings" in client.get("/payments/admin/settings", headers=as_user("adm")).get_data(as_text=True)


def test_error_messages_are_translated(client, host, people):
    host.locale = "fr"
    page = client.post("/payments/admin/settings", data={}, headers=as_user("adm")).get_data(as_text=True)
    assert "Ce formulaire a expiré" in page


def test_unknown_locales_fall_back_to_english():
    assert normalize_locale("de-DE") == "en" and normalize_locale("fr-CA") == "fr" and normalize_locale(None) == "en"

"""The demo LMS's own texts, in English and French (the plugin's texts come from the plugin)."""
from __future__ import annotations

TEXT = {
    "en": {
        "catalog": "Catalog", "invoices": "My invoices", "admin": "Payments", "backoffice": "Back office",
        "signed_in": "Signed in as", "switch": "Switch user",
        "no_match": "No course matches.",
        "school": "School", "other_school": "See the other school's catalog:",
        "enroll_members": "Back office: enroll members", "course": "Course", "members": "Members",
        "member": "Member", "enrollments": "Enrollments", "enroll": "Enroll", "enroll_them": "Enroll",
        "confirm_processing": "Enroll even those whose payment is still being processed",
        "backoffice_help": "Back-office enrollments are free: no charge, no invoice.",
        "has_access": "You have access to this course.", "course_settings": "Course settings",
        "settings_of": "Settings · %(title)s", "fix_fields": "Some fields need your attention; nothing was saved.",
        "title": "Title", "description": "Description", "save": "Save", "back": "Back",
        "terms": "Terms of sale",
        "terms_text": "Demo terms of sale: courses are sold tax-inclusive; you may cancel within 14 days.",
        "choose_user": "Choose a user first (top right).", "form_expired": "The form expired: reload the page.",
        "enrolled": "You are enrolled.", "saved": "Course saved.",
        "title_needed": "Enter a title of at most %(count)d characters, without control characters.",
        "description_invalid": "At most %(count)d characters, without control characters other than tabs "
                               "and line breaks.",
        "choose_course_members": "Choose a course and at least one member.",
        "members_enrolled": "%(count)d member(s) enrolled in “%(title)s”, free of charge.",
        "search_members": "Find members", "search": "Search", "search_help": "By name, email or username.",
        "members_shown": "Only the first %(count)d matches are listed: search to find the others; "
                         "the members you chose stay chosen.",
        "search_invalid": "Search with at most %(count)d characters, without control characters.",
        "too_many_members": "Choose at most %(count)d members at once.",
        "latest_enrollments": "The %(count)d latest are listed.",
        "my_payments": "My payments", "inbox": "Inbox",
        "inbox_help": "The e-mails and SMS the payments plugin sent you (in this demo they are written to files; "
                      "a real LMS sends them).",
        "inbox_empty": "Nothing received yet. As admin, create an invoice under Payments, then request a payment.",
        "email": "E-mail", "sms": "SMS", "skip": "Skip to the content", "field_error": "%(field)s: %(message)s",
        "sign_in": "Sign in", "sign_in_help": "This demo has no passwords: choose who you are.",
    },
    "fr": {
        "catalog": "Catalogue", "invoices": "Mes factures", "admin": "Paiements", "backoffice": "Back-office",
        "signed_in": "Connecté·e en tant que", "switch": "Changer d'utilisateur",
        "no_match": "Aucun cours ne correspond.",
        "school": "École", "other_school": "Voir le catalogue de l’autre école :",
        "enroll_members": "Back-office : inscrire des membres", "course": "Cours", "members": "Membres",
        "member": "Membre", "enrollments": "Inscriptions", "enroll": "S'inscrire", "enroll_them": "Inscrire",
        "confirm_processing": "Inscrire aussi ceux dont le paiement est en cours de traitement",
        "backoffice_help": "Les inscriptions par le back-office sont gratuites : ni paiement, ni facture.",
        "has_access": "Vous avez accès à ce cours.", "course_settings": "Paramètres du cours",
        "settings_of": "Paramètres · %(title)s",
        "fix_fields": "Certains champs sont à corriger ; rien n'a été enregistré.",
        "title": "Titre", "description": "Description", "save": "Enregistrer", "back": "Retour",
        "terms": "Conditions générales de vente",
        "terms_text": "CGV de démonstration : les cours sont vendus TTC ; vous pouvez annuler sous 14 jours.",
        "choose_user": "Choisissez d'abord un utilisateur (en haut à droite).",
        "form_expired": "Le formulaire a expiré : rechargez la page.",
        "enrolled": "Vous êtes inscrit·e.", "saved": "Cours enregistré.",
        "title_needed": "Saisissez un titre de %(count)d caractères au plus, sans caractère de contrôle.",
        "description_invalid": "%(count)d caractères au plus, sans caractère de contrôle autre que les "
                               "tabulations et les retours à la ligne.",
        "choose_course_members": "Choisissez un cours et au moins un membre.",
        "members_enrolled": "%(count)d membre(s) inscrit(s) à « %(title)s », gratuitement.",
        "search_members": "Chercher des membres", "search": "Chercher",
        "search_help": "Par nom, e-mail ou identifiant.",
        "members_shown": "Seuls les %(count)d premiers résultats sont listés : cherchez pour trouver les autres ; "
                         "les membres choisis le restent.",
        "search_invalid": "Cherchez avec %(count)d caractères au plus, sans caractère de contrôle.",
        "too_many_members": "Choisissez au plus %(count)d membres à la fois.",
        "latest_enrollments": "Les %(count)d dernières sont listées.",
        "my_payments": "Mes paiements", "inbox": "Messages reçus",
        "inbox_help": "Les e-mails et SMS que le module de paiement vous a envoyés (dans cette démo, ils sont écrits "
                      "dans des fichiers ; un vrai LMS les envoie).",
        "inbox_empty": "Rien reçu pour l'instant. En tant qu'admin, créez une facture dans Paiements, puis "
                       "demandez un paiement.",
        "email": "E-mail", "sms": "SMS", "skip": "Aller au contenu", "field_error": "%(field)s : %(message)s",
        "sign_in": "Se connecter", "sign_in_help": "Cette démo n'a pas de mot de passe : choisissez qui vous êtes.",
    },
}


def text(lang: str, key: str, **values) -> str:
    """The demo's text ``key`` in ``lang`` (English when the language is unknown)."""
    template = TEXT.get(lang, TEXT["en"])[key]
    return template % values if values else template

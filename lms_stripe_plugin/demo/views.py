"""The demo LMS's pages. Each payment-related step goes through a named signal, as a real host would."""
from __future__ import annotations

from blinker import signal
from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from lms_stripe_plugin import course_labels

from . import inbox, members
from .host import SCHOOLS, DemoHost
from .inputs import IdConverter, clean_text, parse_id, same_site_path, same_site_path_of_url
from .models import Course, Enrollment, User, db
from .text import TEXT, text

bp = Blueprint("demo", __name__, template_folder="templates")
host = DemoHost()
#: Members one back-office submit may choose, and the longest search for them.
MAX_CHOSEN, MAX_SEARCH = 200, 100
#: The longest course title (its column's length) and description.
MAX_TITLE, MAX_DESCRIPTION = 255, 10_000
#: The longest username (its column's length).
MAX_USERNAME = 64
# Registered before the routes below are added: they use it.
bp.record_once(lambda state: state.app.url_map.converters.setdefault("demo_id", IdConverter))


def t(key: str, **values) -> str:
    """The demo's text in the request's language."""
    return text(host.get_locale(), key, **values)


def _send(name, **kwargs):
    return [value for _receiver, value in signal(name).send(current_app._get_current_object(), **kwargs)
            if value is not None]


@bp.app_context_processor
def _layout_context():
    lang = host.get_locale() if request else "en"
    return {"demo_user": host.current_user(), "demo_text": TEXT.get(lang, TEXT["en"]), "demo_lang": lang,
            "demo_t": lambda key, **values: text(lang, key, **values),
            "demo_users": _switcher_users(), "demo_csrf": generate_csrf}


def _switcher_users() -> list:
    """The role accounts to switch to (a bounded query: every page runs it), none when the switcher is off."""
    return members.role_accounts() if current_app.config.get("DEMO_USER_SWITCHER") else []


def _require_user():
    user = host.current_user()
    if user is None:
        flash(t("choose_user"), "error")
        abort(redirect(url_for("demo.catalog")))
    return user


def _check_csrf():
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        abort(400, t("form_expired"))


@bp.route("/")
def index():
    return redirect(url_for("demo.catalog"))


def _courses():
    """The courses of the request's school (every course, unless the demo runs as a platform of schools)."""
    query = db.session.query(Course)
    school = host.current_school()
    if school is not None:
        query = query.filter(Course.school == school)
    return query.order_by(Course.id)


@bp.route("/catalog")
def catalog():
    courses = everything = _courses().all()
    for filtered in _send("lms.catalog.filtering", courses=everything, args=request.args):
        if filtered is everything:  # every course kept (the plugin answers so when no price filter is set)
            continue
        kept = {id(c) for c in filtered}
        courses = [c for c in courses if id(c) in kept]
    user = host.current_user()
    decorations = _send("lms.catalog.rendering", courses=courses, user=user)
    enrolled = set()
    if user is not None:
        enrolled = {e.course_id for e in db.session.query(Enrollment).filter_by(user_id=user.id)}
    school = host.current_school()
    return render_template("demo/catalog.html", courses=courses, decorations=decorations,
                           labels=course_labels(decorations), enrolled=enrolled,
                           school=SCHOOLS.get(school) if school else None,
                           others=[(key, name) for key, name in SCHOOLS.items() if key != school]
                           if school and user is None else [])


@bp.route("/courses/<demo_id:course_id>")
def course(course_id: int):
    course = db.session.get(Course, course_id) or abort(404)
    user = host.current_user()
    fragments = _send("lms.course.detail_rendering", course=course, user=user)
    enrolled = user is not None and host.is_enrolled(user, course)
    return render_template("demo/course.html", course=course, fragments=fragments, enrolled=enrolled)


@bp.route("/courses/<demo_id:course_id>/enroll", methods=["POST"])
def enroll(course_id: int):
    _check_csrf()
    user = _require_user()
    course = db.session.get(Course, course_id) or abort(404)
    for decision in _send("lms.enrollment.requested", course=course, user=user, actor=user, source="self"):
        if not decision.allowed:
            flash(decision.message, "error")
            return redirect(decision.checkout_url or url_for("demo.course", course_id=course_id))
    host.enroll(user, course)
    db.session.commit()
    flash(t("enrolled"), "success")
    return redirect(url_for("demo.course", course_id=course_id))


@bp.route("/courses/<demo_id:course_id>/settings", methods=["GET", "POST"])
def course_settings(course_id: int):
    user = _require_user()
    if user.role != "admin":
        abort(403)
    course = db.session.get(Course, course_id) or abort(404)
    errors, form = {}, None
    if request.method == "POST":
        _check_csrf()
        form = request.form
        fields, errors = _course_fields(form)
        for answer in _send("lms.course.settings_saved", course=course, form=form):  # every error at once
            errors.update(answer)
        if not errors:
            course.title, course.description = fields["title"], fields["description"]
            db.session.commit()
            flash(t("saved"), "success")
            return redirect(url_for("demo.course_settings", course_id=course_id))
        db.session.rollback()
    fragments = _send("lms.course.settings_form", course=course, form=form, errors=errors)
    return render_template("demo/course_settings.html", course=course, fragments=fragments, errors=errors,
                           form=form), 400 if errors else 200


def _course_fields(form) -> tuple[dict, dict]:
    """The course's own fields from its settings form, and their errors."""
    title = clean_text(form.get("title"), MAX_TITLE)
    description = clean_text(form.get("description"), MAX_DESCRIPTION, multiline=True)
    errors = {}
    if not title:
        errors["title"] = t("title_needed", count=MAX_TITLE)
    if description is None:
        errors["description"] = t("description_invalid", count=MAX_DESCRIPTION)
    return {"title": title, "description": description}, errors


@bp.route("/backoffice/enroll", methods=["GET", "POST"])
def backoffice():
    """Free enrollments: find members by a search (a bounded list), choose some, enroll them in a course.

    The form's Search button posts it back with its choices, so that members found by several searches
    can be enrolled at once; its Enroll button enrolls them.
    """
    user = _require_user()
    courses = _courses().all()
    if not any(host.can_enroll_others(user, c) for c in courses):
        abort(403)
    values = request.args
    if request.method == "POST":
        _check_csrf()
        values = request.form
    search_text = _search_text(values.get("q"))
    course = host.get_course(values.get("course_id"))
    chosen = members.by_ids(_chosen_ids(values.getlist("user_ids")))
    if request.method == "POST" and "search" not in values:
        return _enroll_chosen(user, course, chosen, confirmed=bool(values.get("confirm_processing")))
    found = members.search(search_text)
    chosen_ids = {member.id for member in chosen}
    listed = chosen + [member for member in found if member.id not in chosen_ids]
    return render_template("demo/backoffice.html", courses=courses, course=course, members=listed,
                           chosen_ids=chosen_ids, search_text=search_text, more=len(found) >= members.SHOWN,
                           shown=members.SHOWN, enrollments=members.latest_enrollments(),
                           latest=members.LATEST_ENROLLMENTS)


def _search_text(value: str | None) -> str:
    cleaned = clean_text(value, MAX_SEARCH)
    if cleaned is None:
        abort(400, t("search_invalid", count=MAX_SEARCH))
    return cleaned


def _chosen_ids(values: list[str]) -> list[int]:
    if len(values) > MAX_CHOSEN:
        abort(400, t("too_many_members", count=MAX_CHOSEN))
    return [number for number in map(parse_id, values) if number is not None]


def _enroll_chosen(actor, course, chosen, *, confirmed: bool):
    if course is None or not chosen:
        flash(t("choose_course_members"), "error")
    elif not host.can_enroll_others(actor, course):
        abort(403)
    else:
        _enroll_members(actor, course, chosen, confirmed=confirmed)
    return redirect(url_for("demo.backoffice"))


def _enroll_members(actor, course, chosen, *, confirmed: bool) -> None:
    done = 0
    for member in chosen:
        decisions = _send("lms.enrollment.requested", course=course, user=member, actor=actor, source="backoffice",
                          confirmed=confirmed)
        refused = [d for d in decisions if not d.allowed]
        if refused:
            flash(f"{member.name}: {refused[0].message}", "error")
            continue
        host.enroll(member, course)
        done += 1
    db.session.commit()
    if done:
        flash(t("members_enrolled", count=done, title=course.title), "success")


@bp.route("/demo/login/<username>")
def login(username: str):
    if not current_app.config.get("DEMO_USER_SWITCHER"):
        abort(404)
    username = clean_text(username, MAX_USERNAME) or abort(404)
    user = db.session.query(User).filter_by(username=username).one_or_none() or abort(404)
    session["user_id"] = user.id
    return redirect(same_site_path(request.args.get("next")) or url_for("demo.catalog"))


@bp.route("/demo/sign-in")
def sign_in():
    """Where "Sign in to buy" leads (`DemoHost.sign_in_url`): the demo has no passwords, a visitor picks an
    account, and comes back to the page they were on."""
    if not current_app.config.get("DEMO_USER_SWITCHER"):
        abort(404)
    back = same_site_path(request.args.get("next")) or url_for("demo.catalog")
    return render_template("demo/sign_in.html", accounts=members.role_accounts(), back=back)


@bp.route("/demo/logout")
def logout():
    session.pop("user_id", None)
    return redirect(url_for("demo.catalog"))


@bp.route("/demo/lang/<lang>")
def set_lang(lang: str):
    if lang in ("en", "fr"):
        session["lang"] = lang
    return redirect(same_site_path_of_url(request.referrer, request.host_url) or url_for("demo.catalog"))


@bp.route("/demo/school/<school>")
def set_school(school: str):
    """A visitor's choice of school, when the demo runs as a platform (a signed-in user's is their own)."""
    if school in SCHOOLS:
        session["school"] = school
    return redirect(url_for("demo.catalog"))


@bp.route("/inbox")
def user_inbox():
    """The e-mails and SMS the plugin sent to the signed-in user (the demo's files; a real LMS has none)."""
    user = _require_user()
    received = inbox.for_user(current_app.config.get("LMS_STRIPE_MAIL_FILE"),
                              current_app.config.get("LMS_STRIPE_SMS_FILE"), email=user.email, phone=user.phone)
    return render_template("demo/inbox.html", received=received,
                           base_url=current_app.config["LMS_STRIPE_PUBLIC_URL"].rstrip("/") + "/")


@bp.route("/terms")
def terms():
    return render_template("demo/terms.html")

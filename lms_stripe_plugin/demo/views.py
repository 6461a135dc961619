"""The demo LMS's pages. Each payment-related step goes through a named signal, as a real host would."""
from __future__ import annotations

from blinker import signal
from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from .host import DemoHost
from .inputs import IdConverter, same_site_path, same_site_path_of_url
from .models import Course, Enrollment, User, db
from .text import TEXT, text

bp = Blueprint("demo", __name__, template_folder="templates")
host = DemoHost()
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
            "demo_users": db.session.query(User).order_by(User.id).all(), "demo_csrf": generate_csrf}


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


@bp.route("/catalog")
def catalog():
    courses = db.session.query(Course).order_by(Course.id).all()
    for filtered in _send("lms.catalog.filtering", courses=courses, args=request.args):
        kept = {id(c) for c in filtered}
        courses = [c for c in courses if id(c) in kept]
    user = host.current_user()
    decorations = _send("lms.catalog.rendering", courses=courses, user=user)
    enrolled = set()
    if user is not None:
        enrolled = {e.course_id for e in db.session.query(Enrollment).filter_by(user_id=user.id)}
    return render_template("demo/catalog.html", courses=courses, decorations=decorations, enrolled=enrolled)


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
        title = form.get("title", "").strip()
        if not title or len(title) > 255:
            errors["title"] = t("title_needed")
        else:
            for answer in _send("lms.course.settings_saved", course=course, form=form):
                errors.update(answer)
        if not errors:
            course.title, course.description = title, form.get("description", "")
            db.session.commit()
            flash(t("saved"), "success")
            return redirect(url_for("demo.course_settings", course_id=course_id))
        db.session.rollback()
    fragments = _send("lms.course.settings_form", course=course, form=form, errors=errors)
    return render_template("demo/course_settings.html", course=course, fragments=fragments, errors=errors,
                           form=form), 400 if errors else 200


@bp.route("/backoffice/enroll", methods=["GET", "POST"])
def backoffice():
    user = _require_user()
    courses = db.session.query(Course).order_by(Course.id).all()
    if not any(host.can_enroll_others(user, c) for c in courses):
        abort(403)
    members = db.session.query(User).order_by(User.name).all()
    if request.method == "POST":
        _check_csrf()
        course = host.get_course(request.form.get("course_id"))
        chosen = [host.get_user(uid) for uid in request.form.getlist("user_ids")]
        chosen = [member for member in chosen if member is not None]
        if course is None or not chosen:
            flash(t("choose_course_members"), "error")
        else:
            _enroll_members(user, course, chosen)
        return redirect(url_for("demo.backoffice"))
    enrollments = db.session.query(Enrollment, User, Course).join(User).join(Course).order_by(Enrollment.id.desc()).all()
    return render_template("demo/backoffice.html", courses=courses, members=members, enrollments=enrollments)


def _enroll_members(actor, course, members) -> None:
    done = 0
    for member in members:
        decisions = _send("lms.enrollment.requested", course=course, user=member, actor=actor, source="backoffice")
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
    user = db.session.query(User).filter_by(username=username).one_or_none() or abort(404)
    session["user_id"] = user.id
    return redirect(same_site_path(request.args.get("next")) or url_for("demo.catalog"))


@bp.route("/demo/logout")
def logout():
    session.pop("user_id", None)
    return redirect(url_for("demo.catalog"))


@bp.route("/demo/lang/<lang>")
def set_lang(lang: str):
    if lang in ("en", "fr"):
        session["lang"] = lang
    return redirect(same_site_path_of_url(request.referrer, request.host_url) or url_for("demo.catalog"))


@bp.route("/terms")
def terms():
    return render_template("demo/terms.html")

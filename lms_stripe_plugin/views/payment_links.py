"""Payment links: the administrators' pages (the list, a new link, a link with its address, its button and its
payments, disabling it) and the link's public page, with the script its button may load.

Who may open what: the administrators' pages need an administrator. The public page and its script are open to
anyone holding the address, signed in or not (a school puts it on its website); a link for one learner shows
anyone else why they cannot pay it, and takes no payment from them.
"""
from __future__ import annotations

from flask import Response, abort, current_app, flash, make_response, redirect, request, url_for
from markupsafe import Markup

from ..accounts import settings as payment_settings
from ..billing import paying, payment_links
from ..core import schools
from ..core.i18n import gettext as _
from ..core.models import PaymentLink, parse_row_id
from ..errors import PaymentsError, UnreadableSecret, ValidationFailed
from ..web import link_button
from ..web.forms import format_rate_input
from ..web.link_forms import read_link, read_payer
from ..web.rendering import render
from ._common import actor_id, current_user, require_admin, state, step
from .pay import back_from_stripe


def register(bp) -> None:
    bp.add_url_rule("/admin/links", "admin_links", link_list)
    bp.add_url_rule("/admin/links/new", "admin_new_link", new_link, methods=["GET", "POST"])
    bp.add_url_rule("/admin/links/<lms_id:link_id>", "admin_link", link_page)
    bp.add_url_rule("/admin/links/<lms_id:link_id>/disable", "admin_disable_link", disable, methods=["POST"])
    bp.add_url_rule("/link/<token>", "pay_link", pay_link, methods=["GET", "POST"])
    bp.add_url_rule("/link/<token>/button.js", "link_button", button_script)


# -- administrators ---------------------------------------------------------------------------------------------


def link_list():
    require_admin()
    before_id = parse_row_id(request.args.get("after"))
    if before_id is None and "after" in request.args:
        abort(400)
    rows, more = payment_links.page(state().session, before_id=before_id,
                                    limit=current_app.config["LMS_STRIPE_PAGE_SIZE"])
    return render("lms_stripe/admin/links.html", rows=rows, availability=payment_links.availability,
                  limits=payment_links.limits,
                  next_url=url_for("lms_stripe.admin_links", after=rows[-1].id) if more and rows else None)


def new_link():
    user = require_admin()
    st = state()
    errors: dict[str, str] = {}
    if request.method == "POST":
        read = read_link(request.form, st.host)
        errors = read.errors
        if not errors and read.data is not None:
            try:
                link = step(payment_links.create, st, read.data, actor_id=actor_id(user))
            except ValidationFailed as err:
                errors = err.errors
            else:
                flash(_("The payment link is created: put its address or its button where payers will find it."),
                      "success")
                return redirect(url_for("lms_stripe.admin_link", link_id=link.id))
    settings = payment_settings.load(st.session)
    topup = request.args.get("topup") == "1"  # from a learner's balance page: a top-up link for them
    values = request.form if request.method == "POST" else {
        "currency": settings.default_currency, "vat_rate": "0" if topup else format_rate_input(settings.default_vat_rate),
        "kind": "fixed", "learner": (request.args.get("learner") or "")[:64], "topup": "on" if topup else ""}
    return render("lms_stripe/admin/new_link.html", errors=errors, values=values), 400 if errors else 200


def _link_or_404(link_id: int) -> PaymentLink:
    link = schools.get(state().session, PaymentLink, link_id)
    if link is None:
        abort(404)
    return link


def link_page(link_id: int):
    require_admin()
    st = state()
    link = _link_or_404(link_id)
    address = snippet = script = None
    try:
        token = payment_links.token_of(link)
    except UnreadableSecret:
        flash(_("This link's address cannot be decrypted with any encryption key: SECRET_KEY or "
                "LMS_STRIPE_ENCRYPTION_KEYS changed. Add the old key to LMS_STRIPE_ENCRYPTION_KEYS (or the old "
                "SECRET_KEY to SECRET_KEY_FALLBACKS) to see it again; the link still takes payments."), "error")
    else:
        address = payment_links.page_url(link, token)
        snippet = link_button.snippet(address, _("Pay: %(title)s", title=link.title))
        script = link_button.script_tag(payment_links.script_url(link, token))
    learner = st.host.get_user(link.user_id) if link.user_id else None
    return render("lms_stripe/admin/link.html", link=link, address=address, snippet=snippet, script=script,
                  preview=Markup(snippet) if snippet else None, payments=payment_links.payments(st.session, link),
                  availability=payment_links.availability(link), limits=payment_links.limits(link),
                  learner=st.host.user_display_name(learner) if learner is not None else link.user_id)


def disable(link_id: int):
    user = require_admin()
    link = _link_or_404(link_id)
    try:
        step(payment_links.disable, state(), link, actor_id=actor_id(user))
    except PaymentsError as err:
        flash(err.message, "error")
    else:
        flash(_("The payment link is disabled: its page says so, and it takes no more payments."), "success")
    return redirect(url_for("lms_stripe.admin_link", link_id=link_id))


# -- the public page --------------------------------------------------------------------------------------------


def _public(response):
    """The link's page: its address stays out of the Referer sent to Stripe, and out of search engines."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _link_of(token: str) -> PaymentLink:
    link = payment_links.find(state().session, token)
    if link is None:
        abort(404)
    return link


def pay_link(token: str):
    link = _link_of(token)
    if request.method == "POST":
        return _pay(link, token)
    attempt = back_from_stripe()
    notice = attempt.status if attempt is not None and attempt.link_id == link.id else None
    return _page(link, token, notice=notice)


def _visitor() -> tuple[object | None, str | None]:
    user = current_user()
    return user, state().host.user_id(user) if user is not None else None


def _page(link: PaymentLink, token: str, *, errors: dict[str, str] | None = None, notice: str | None = None,
          status: int = 200):
    st = state()
    st.session.refresh(link)  # its counts move by conditional updates
    user, user_id = _visitor()
    refusal = payment_links.payer_refusal(link, user_id)
    least, most = payment_links.limits(link)
    closed = payment_links.closed_message(link)
    if closed is None and not payment_settings.load(st.session).active:
        closed = _("Online payment is not available at the moment.")
    body = render("lms_stripe/pay_link.html", link=link, errors=errors or {}, notice=notice,
                  closed=closed, refusal=refusal, signed_in=user is not None,
                  payer_name=st.host.user_display_name(user) if user is not None else "", least=least, most=most,
                  values=request.form if request.method == "POST" else {},
                  action=url_for("lms_stripe.pay_link", token=token))
    if refusal and status == 200:
        status = 403 if user is not None else 200
    return _public(make_response(body, status))


def _pay(link: PaymentLink, token: str):
    """The Pay click: the amount (the payer's, for a free amount), and who pays; then Checkout."""
    st = state()
    user, user_id = _visitor()
    refusal = payment_links.payer_refusal(link, user_id)
    if refusal:
        return _page(link, token, errors={"_": refusal}, status=403 if user is not None else 401)
    read = read_payer(request.form, link, signed_in=user is not None)
    if read.errors or read.amount is None:
        return _page(link, token, errors=read.errors, status=400)
    payer = payment_links.Payer(name=read.name, email=read.email) if user is None else payment_links.Payer(
        name=st.host.user_display_name(user), email=st.host.user_email(user), user_id=user_id)
    try:
        plan = step(payment_links.reserve, st, link, payer, read.amount,
                    return_url=payment_links.page_url(link, token))
        url = plan.url or step(paying.open_session, st, plan)
    except PaymentsError as err:
        return _page(link, token, errors={"_": err.message}, status=err.status_code)
    return redirect(url, code=303)


def button_script(token: str):
    """The button's optional script (JavaScript), for any page of the web: cached a while, as scripts are."""
    link = _link_of(token)
    body = link_button.script(payment_links.page_url(link, token))
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response

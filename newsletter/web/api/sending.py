"""The API's send endpoints: start a confirmed send (in the web process's background, or on the
queue), and read its progress, counts and failures. The same functions as the editor's pages."""

from __future__ import annotations

from flask import Response, jsonify

from ...errors import InputError, NewsletterError, SendRefused, StaleRender, SubscriberError
from ..admin.sending import runner
from ..context import services
from ..send_status import send_status
from ..sending import start_send
from . import bp, error
from .views import paging, load_or_404, validated

_REFUSED = {"confirm": (400, "confirmation_mismatch"), "running": (409, "send_running"),
            "sent": (409, "already_sent"), "empty": (409, "no_recipients")}


@bp.post("/issues/<issue_id>/send")
def send_issue(issue_id: str) -> Response:
    """Start sending the issue to its list; the body confirms it with the issue id (202 and the plan)."""
    load_or_404(issue_id)
    body = validated("SendRequest")
    try:
        plan = start_send(services().config, runner(), issue_id, confirm=body["confirm"],
                          build=bool(body.get("build", False)), list_name=body.get("list"))
    except SendRefused as err:
        status, code = _REFUSED.get(err.reason, (409, "not_sent"))
        return error(status, code, str(err))
    except StaleRender as err:
        return error(409, "stale_render", f"{err}; send with \"build\": true to build it first")
    except InputError as err:
        return error(400, "invalid_list", str(err))
    except SubscriberError as err:
        return error(409, "no_recipients", str(err))
    except NewsletterError as err:
        return error(409, "not_sent", str(err))
    resp = jsonify({"issue": issue_id, "list": plan.list_name, "recipients": plan.recipients,
                    "queued": services().config.queue.enabled})
    resp.status_code = 202
    return resp


@bp.get("/issues/<issue_id>/status")
def issue_send_status(issue_id: str) -> Response:
    """Return the send's state, counts per ledger state, progress and a page of its failures."""
    load_or_404(issue_id)
    page, per_page = paging()
    return jsonify(send_status(services().config, runner(), issue_id, page=page, per_page=per_page).as_json())

"""The OpenAPI 3.0 document of /api/v1/: the request schemas here also validate the request bodies
(jsonschema), so what the document says and what the API accepts cannot drift apart."""

from __future__ import annotations

from typing import Any

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_STR = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page_of(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "page", "per_page", "total"], "properties": {
        "items": {"type": "array", "items": _ref(name)}, "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1}, "total": {"type": "integer", "minimum": 0}}}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": _STR, "message": _STR}}}},
    "Item": {"type": "object", "required": ["url", "title", "summary", "section", "source", "image", "image_alt"],
             "properties": {k: _STR for k in ("url", "title", "summary", "note", "section", "source", "author",
                                              "date", "image", "image_alt")}},
    "IssueSummary": {"type": "object", "required": ["id", "title", "state", "items"], "properties": {
        "id": _STR, "title": _STR, "state": {"type": "string", "enum": ["draft", "scheduled", "sending", "sent", "invalid"]},
        "items": {"type": "integer", "minimum": 0}, "when": _STR}},
    "Issue": {"type": "object", "required": ["id", "title", "date", "intro", "preheader", "items", "digest", "state", "removed"],
              "properties": {"id": _STR, "title": _STR, "date": _STR, "intro": _STR, "preheader": _STR,
                             "digest": _STR, "state": _STR, "items": {"type": "array", "items": _ref("Item")},
                             "removed": {"type": "array", "items": _ref("Removed")}}},
    "Removed": {"type": "object", "required": ["url", "title"], "properties": {"url": _STR, "title": _STR}},
    "Restore": {"type": "object", "required": ["url"], "additionalProperties": False,
                "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 2000}}},
    "BlurbRequest": {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {
        "url": {"type": "string", "pattern": "^https?://[^\\s]+$", "maxLength": 2000},
        "summarizer": {"type": "string", "maxLength": 100}}},
    "Blurb": {"type": "object", "required": ["url", "summarizer", "summary"],
              "properties": {"url": _STR, "summarizer": _STR, "summary": _STR}},
    "IssueCreate": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN}, "title": {"type": "string", "maxLength": 500}}},
    "ItemEdit": {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {
        "url": {"type": "string", "maxLength": 2000}, **{k: {"type": "string", "maxLength": 20000}
                                                          for k in ("title", "summary", "note", "section", "image_alt")}}},
    "IssueEdit": {"type": "object", "required": ["digest"], "additionalProperties": False, "properties": {
        "digest": {"type": "string", "maxLength": 64},
        **{k: {"type": "string", "maxLength": 20000} for k in ("title", "intro", "preheader")},
        "items": {"type": "array", "maxItems": 500, "items": _ref("ItemEdit")}}},
    "Links": {"type": "object", "required": ["urls"], "additionalProperties": False, "properties": {
        "urls": {"type": "array", "minItems": 1, "maxItems": 50,
                 "items": {"type": "string", "pattern": "^https?://[^\\s]+$", "maxLength": 2000}},
        "section": {"type": "string", "maxLength": 200}}},
    "AddReport": {"type": "object", "required": ["added", "skipped", "failed"], "properties": {
        "added": {"type": "array", "items": _ref("Item")},
        "skipped": {"type": "array", "items": _ref("LinkOutcome")},
        "failed": {"type": "array", "items": _ref("LinkOutcome")}}},
    "LinkOutcome": {"type": "object", "required": ["url", "reason"], "properties": {"url": _STR, "reason": _STR}},
    "Preview": {"type": "object", "required": ["subject", "html", "text", "warnings"], "properties": {
        "subject": _STR, "html": _STR, "text": _STR, "warnings": {"type": "array", "items": _STR}}},
    "TestSend": {"type": "object", "required": ["address"], "additionalProperties": False,
                 "properties": {"address": {"type": "string", "maxLength": 320}}},
    "TestSent": {"type": "object", "required": ["address", "message_id"], "properties": {"address": _STR, "message_id": _STR}},
    "ScheduleRequest": {"type": "object", "required": ["at"], "additionalProperties": False,
                        "properties": {"at": {"type": "string", "maxLength": 40}}},
    "Job": {"type": "object", "required": ["id", "what", "next_run"], "properties": {
        "id": _STR, "what": _STR, "next_run": {"type": "string", "nullable": True}}},
    "SendRequest": {"type": "object", "required": ["confirm"], "additionalProperties": False, "properties": {
        "confirm": {"type": "string", "maxLength": 100, "description": "the issue id, typed again"},
        "build": {"type": "boolean", "description": "build the issue first (a stale render is refused otherwise)"},
        "list": {"type": "string", "minLength": 1, "maxLength": 200, "description": "default: delivery.default_list"}}},
    "SendStarted": {"type": "object", "required": ["issue", "list", "recipients", "queued"], "properties": {
        "issue": _STR, "list": _STR, "recipients": {"type": "integer", "minimum": 0}, "queued": {"type": "boolean"}}},
    "Failure": {"type": "object", "required": ["email", "list", "state", "reply_class", "reply"],
                "properties": {k: _STR for k in ("email", "list", "state", "reply_class", "reply")}},
    "SendStatus": {"type": "object", "required": ["issue_id", "state", "phase", "lists", "counts", "total", "done",
                                                  "rate", "percent", "running", "finished", "error", "failures"],
                   "properties": {
        "issue_id": _STR, "state": {"type": "string", "enum": ["not sent", "sending", "sent"]},
        "phase": {"type": "string", "enum": ["not sent", "running", "stopped", "finished"]},
        "lists": {"type": "array", "items": _STR},
        "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "total": {"type": "integer", "minimum": 0}, "done": {"type": "integer", "minimum": 0},
        "rate": {"type": "number", "minimum": 0}, "percent": {"type": "integer", "minimum": 0, "maximum": 100},
        "running": {"type": "boolean"}, "finished": {"type": "boolean"}, "error": _STR,
        "failures": _page_of("Failure")}},
    "Candidate": {"type": "object", "required": ["id", "url", "title", "site", "origin", "published", "added_to",
                                                 "image", "blurb", "fetch_state", "fetch_error"],
                  "properties": {"id": {"type": "integer"}, "url": _STR, "title": _STR, "site": _STR,
                                 "origin": _STR, "published": _STR, "added_to": _STR, "image": _STR, "blurb": _STR,
                                 "fetch_state": {"type": "string", "enum": ["waiting", "fetching", "fetched", "failed"]},
                                 "fetch_error": _STR}},
    "Move": {"type": "object", "required": ["issue"], "additionalProperties": False,
             "properties": {"issue": {"type": "string", "pattern": ID_PATTERN}}},
    "FeedsRead": {"type": "object", "required": ["offered", "failed"], "properties": {
        "offered": {"type": "integer", "minimum": 0}, "failed": {"type": "array", "items": _STR}}},
    "CandidateAdd": {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {
        "url": {"type": "string", "pattern": "^https?://[^\\s]+$", "maxLength": 2000},
        "title": {"type": "string", "maxLength": 1000}}},
    "SubscriberList": {"type": "object", "required": ["name", "counts"], "properties": {
        "name": _STR, "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}},
    "Subscriber": {"type": "object", "required": ["email", "name", "list", "status"], "properties": {
        "email": _STR, "name": _STR, "list": _STR, "status": _STR}},
    "SubscriberErase": {"type": "object", "required": ["email"], "additionalProperties": False, "properties": {
        "email": {"type": "string", "maxLength": 320}, "list": {"type": "string", "minLength": 1, "maxLength": 200}}},
    "SubscriberAdd": {"type": "object", "required": ["email"], "additionalProperties": False, "properties": {
        "email": {"type": "string", "maxLength": 320}, "name": {"type": "string", "maxLength": 500},
        "list": {"type": "string", "minLength": 1, "maxLength": 200}}},
    "SubscriberStatusChange": {"type": "object", "required": ["email", "status"], "additionalProperties": False,
                               "properties": {
        "email": {"type": "string", "maxLength": 320}, "list": {"type": "string", "minLength": 1, "maxLength": 200},
        "status": {"type": "string", "enum": ["unsubscribed", "active"],
                   "description": "active undoes a bounce or complaint, never an unsubscribe (409)"}}},
    "LineError": {"type": "object", "required": ["line", "reason"], "properties": {
        "line": {"type": "integer", "minimum": 1}, "reason": _STR}},
    "ImportReport": {"type": "object", "required": ["added", "updated", "unchanged", "kept_suppressed", "duplicates",
                                                    "rejected", "errors", "encoding", "delimiter"], "properties": {
        **{k: {"type": "integer", "minimum": 0}
           for k in ("added", "updated", "unchanged", "kept_suppressed", "duplicates", "rejected")},
        "errors": {"type": "array", "maxItems": 1000, "items": _ref("LineError"),
                   "description": "the first 1000 rejected rows; `rejected` counts them all"},
        "encoding": _STR, "delimiter": _STR}},
}

_ERRORS = {code: {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
           for code, text in (("400", "Invalid request"), ("401", "Missing or unknown bearer token"),
                              ("404", "No such resource"), ("409", "Conflict with the current state"),
                              ("413", "Request too large"), ("415", "Unsupported body type"))}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(op_id: str, summary: str, ok: dict[str, Any], *, body: str | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = ("400", "401"),
        status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary,
                          "responses": {status: ok, **{e: _ERRORS[e] for e in errors}}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    return op


_ISSUE = {"name": "issue_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
_CAND = {"name": "candidate_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}   # larger than any id: 404
_PAGING = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
           {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}]
_LIST = {"name": "list", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 200}}
_Q = {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 320}}
_NO_CONTENT = {"description": "Done"}
_E404 = ("400", "401", "404")


def _import_op() -> dict[str, Any]:
    """Return the CSV import operation: its body is the file itself, or a multipart field "file"."""
    op = _op("importSubscribers", "Import a CSV file (header with an email column) into the list; rows that "
             "cannot be imported are listed by line number", _json(_ref("ImportReport")), params=[_LIST],
             errors=("400", "401", "413", "415"))
    op["requestBody"] = {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}}}}}}
    return op


def document(server_url: str) -> dict[str, Any]:
    """Return the OpenAPI 3.0.3 document with server_url (…/api/v1) as its server."""
    paths = {
        "/issues": {
            "get": _op("listIssues", "List issues, newest first", _json(_page_of("IssueSummary")), params=_PAGING),
            "post": _op("createIssue", "Create an issue file", _json(_ref("Issue"), "Created"), body="IssueCreate",
                        errors=("400", "401", "409"), status="201")},
        "/issues/{issue_id}": {
            "get": _op("getIssue", "An issue with its items and the digest to edit it with",
                       _json(_ref("Issue")), params=[_ISSUE], errors=_E404),
            "patch": _op("editIssue", "Change fields, reorder or remove items (refused when the digest is stale)",
                         _json(_ref("Issue")), body="IssueEdit", params=[_ISSUE], errors=_E404 + ("409",))},
        "/issues/{issue_id}/items": {
            "post": _op("addItems", "Fetch, summarise and append articles", _json(_ref("AddReport")),
                        body="Links", params=[_ISSUE], errors=_E404)},
        "/issues/{issue_id}/restore": {
            "post": _op("restoreItem", "Put a removed item back at the end and clear its tombstone",
                        _json(_ref("Issue")), body="Restore", params=[_ISSUE], errors=_E404 + ("409",))},
        "/issues/{issue_id}/blurb": {
            "post": _op("regenerateBlurb", "Fetch the article again and summarise it with the chosen summariser "
                        "(nothing is saved: PATCH the issue with it)", _json(_ref("Blurb")), body="BlurbRequest",
                        params=[_ISSUE], errors=_E404 + ("409",))},
        "/summarizers": {"get": _op("listSummarizers", "The installed summariser plugins and the default",
                                    _json({"type": "object", "required": ["items", "default"], "properties": {
                                        "items": {"type": "array", "items": _STR}, "default": _STR}}))},
        "/issues/{issue_id}/preview": {
            "post": _op("buildPreview", "Build the issue and return its preview and check results",
                        _json(_ref("Preview")), params=[_ISSUE], errors=_E404 + ("409",))},
        "/issues/{issue_id}/test": {
            "post": _op("sendTest", "Send a test copy of the built issue", _json(_ref("TestSent")),
                        body="TestSend", params=[_ISSUE], errors=_E404 + ("409",))},
        "/issues/{issue_id}/schedule": {
            "put": _op("scheduleIssue", "Schedule the send (time in the newsletter's time zone)",
                       _json(_ref("Job")), body="ScheduleRequest", params=[_ISSUE], errors=_E404 + ("409",)),
            "delete": _op("unscheduleIssue", "Cancel the scheduled send", _NO_CONTENT, params=[_ISSUE],
                          errors=_E404, status="204")},
        "/issues/{issue_id}/send": {
            "post": _op("sendIssue", "Send the built issue now (confirmed by its id), in the background",
                        _json(_ref("SendStarted"), "Send started"), body="SendRequest", params=[_ISSUE],
                        errors=_E404 + ("409",), status="202")},
        "/issues/{issue_id}/status": {
            "get": _op("sendStatus", "A send's counts per state, progress and failures (paginated)",
                       _json(_ref("SendStatus")), params=[_ISSUE, *_PAGING], errors=_E404)},
        "/inbox": {
            "get": _op("listInbox", "Waiting inbox candidates, newest first", _json(_page_of("Candidate")),
                       params=_PAGING),
            "post": _op("addCandidate", "Put a link in the inbox", _json(_ref("Candidate"), "Added"),
                        body="CandidateAdd", errors=("400", "401", "409"), status="201")},
        "/inbox/feeds": {
            "post": _op("readFeeds", "Read the configured feeds into the inbox now (new links are then "
                        "fetched in the background)", _json(_ref("FeedsRead")))},
        "/inbox/{candidate_id}/move": {
            "post": _op("moveCandidate", "Append a candidate to an issue (its already fetched article, else "
                        "fetched now)", _json(_ref("AddReport")), body="Move", params=[_CAND],
                        errors=_E404 + ("409",))},
        "/inbox/{candidate_id}": {
            "delete": _op("dismissCandidate", "Dismiss a candidate for good", _NO_CONTENT, params=[_CAND],
                          errors=_E404, status="204")},
        "/subscribers/erase": {
            "post": _op("eraseSubscriber", "Erase an address: deleted with its data, a hashed suppression kept",
                        _NO_CONTENT, body="SubscriberErase", errors=_E404, status="204")},
        "/subscribers/status": {
            "post": _op("setSubscriberStatus", "Unsubscribe or reactivate an address (reactivating undoes a bounce "
                        "or complaint, never an unsubscribe)", _json(_ref("Subscriber")), body="SubscriberStatusChange",
                        errors=_E404 + ("409",))},
        "/subscribers/import": {
            "post": _import_op()},
        "/subscribers/export.csv": {
            "get": _op("exportSubscribers", "The list as CSV (a formula-like cell starts with ')",
                       {"description": "CSV file", "content": {"text/csv": {"schema": _STR}}}, params=[_LIST],
                       errors=_E404)},
        "/lists": {"get": _op("listLists", "Subscriber lists with counts per state",
                              _json({"type": "object", "required": ["items"], "properties": {
                                  "items": {"type": "array", "items": _ref("SubscriberList")}}}))},
        "/subscribers": {
            "get": _op("listSubscribers", "Subscribers of a list, optionally filtered",
                       _json(_page_of("Subscriber")), params=[_LIST, _Q, *_PAGING]),
            "post": _op("addSubscriber", "Add a subscriber (an existing address keeps its state)",
                        _json(_ref("Subscriber"), "Added"), body="SubscriberAdd", status="201")},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "newsletter editor API", "version": "1.0.0",
                 "description": "Bearer tokens come from `newsletter tokens create NAME`."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }

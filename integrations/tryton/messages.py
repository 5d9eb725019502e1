"""What a refusal or failure of Tryton's means for the bridge, from what Tryton sent.

sao shows every refusal and failure in a dialog of its own, in the user's language; the
words are no use to a program that must work in any of them (issue 25). What does not
change with the language is what trytond *sent*: JSON-RPC answers a refusal with
``{"error": [type, args]}``, where ``type`` is the exception's kind (``UserError``,
``UserWarning``, ``LoginException``, ``ConcurrencyException``) or, for a crash on the
server, the exception's text; a failed request has its HTTP status. :mod:`.pages`
records the last of these in the page (:data:`RPC_HOOK_JS`, a jQuery ``ajaxComplete``
handler installed with every poll: sao, 7.0 and 8.0, sends every call through
``jQuery.ajax``) and
hands it here with the dialog sao showed, named by its class (``warning-dialog``,
``error-dialog``, ...), never by its text.

trytond sends ``UserError`` for every refusal of a user's input -- its subclasses
(``AccessError``, ``DomainValidationError``, ``DigitsValidationError``) are not told apart
on the wire. What tells them apart is the call and the error's domain: a refusal with
a domain is a record that does not satisfy one (the product is not one that may be sold);
a refusal without one of the save of a sale or a line is trytond-sale's draft check
("no longer in a draft state") -- a digits refusal cannot come from sao, which rounds a
quantity to its unit's digits before sending it (the integration reads that back as
INVALID_AMOUNT). The flow confirms a closed sale against the sale's state
(:meth:`integrations.tryton.flow.TrytonIntegration._write`).
"""

from core.errors import (ErpUnavailable, ProductNotFound, UnexpectedPage, WorksheetClosed,
                         WorksheetLocked)

#: the kinds of dialog sao shows for what Tryton answered (their CSS classes)
DIALOGS = ("message-dialog", "warning-dialog", "error-dialog", "user-warning-dialog",
           "concurrency-dialog")

#: Tryton's own error kinds; any other first element of ``error`` is a server crash
TRYTON_KINDS = ("UserError", "UserWarning", "LoginException", "ConcurrencyException")

#: the calls that store a sale's lines (sao saves the sale with its lines in one write)
_SAVES = ("model.sale.sale.write", "model.sale.sale.create", "model.sale.line.create",
          "model.sale.line.write", "model.sale.line.delete")

# Installed in the page by every poll (once per page): remembers the last answer of a
# JSON-RPC or login call that went wrong, as the kind Tryton sent, the HTTP status and
# the call, and forgets it when a later call succeeds. 401 (sao asks for the password
# and repeats the call) and 503 (sao waits and repeats it) are not failures of a step.
RPC_HOOK_JS = """
if (!window.__bridgeRpcHook) {
    window.__bridgeRpcHook = true;
    window.__bridgeRpcError = null;
    jQuery(document).ajaxComplete(function (event, xhr, settings) {
        // A JSON-RPC call names its method (sao 8.0 posts to /DB/rpc/, 7.0 to /DB/);
        // 8.0's login goes to /DB/session/login.
        var method = null;
        try { method = JSON.parse(settings.data).method || null; } catch (e) {}
        if (/\\/session\\/login/.test(settings.url || '')) { method = 'login'; }
        if (!method) { return; }
        var answer = xhr.responseJSON, failure = null;
        if (xhr.status === 401 || xhr.status === 503) { return; }
        if (xhr.status !== 200) {
            failure = {status: xhr.status};
        } else if (answer === null || answer === undefined) {
            failure = {status: 200, kind: 'empty'};
        } else if (answer.error) {
            var kind = String(answer.error[0]);
            var detail = answer.error[1];
            failure = {status: 200, kind: kind,
                       domain: !!(kind === 'UserError' && detail && detail[2]
                                  && !jQuery.isEmptyObject(detail[2]))};
        }
        if (failure) { failure.method = method; }
        window.__bridgeRpcError = failure;
    });
}
"""


def erp_error(dialogs, failure):
    """The bridge error (not raised) for the dialogs sao showed and what Tryton sent.

    :param dialogs: ``[{"kind": one of DIALOGS, "text": its (translated) text}]``
    :param failure: the last failed call recorded by :data:`RPC_HOOK_JS` (``None``
        when none was): ``{"status", "kind", "domain", "method"}``
    :returns: an :class:`~core.errors.IntegrationError`; :class:`UnexpectedPage` naming
        the dialog when neither explains it
    """
    said = "; ".join(" ".join(d["text"].split()) for d in dialogs)[:300]
    kinds = ", ".join(d["kind"] for d in dialogs)
    error = _by_failure(failure or {}) or _by_dialog(dialogs)
    if error is None:
        return UnexpectedPage(f"sao showed a {kinds} that no answer of Tryton explains "
                              f"(last failed call: {failure}): {said}")
    return error(f"Tryton answered {_described(failure)} ({kinds}): {said}")


def _by_failure(failure):
    status, kind = failure.get("status"), failure.get("kind")
    if status is None:
        return None
    if status != 200 or kind == "empty":
        return ErpUnavailable  # no answer, a proxy's 502, 429 (logins throttled), a 500
    if kind == "ConcurrencyException":
        return WorksheetLocked  # someone saved the sale meanwhile
    if kind == "UserError":
        if failure.get("domain"):
            return ProductNotFound  # the line's product is not one that may be sold
        if failure.get("method") in _SAVES:
            return WorksheetClosed  # trytond-sale: lines only on a draft sale
        return None
    if kind in TRYTON_KINDS:  # a warning to confirm, a login question: not ours to answer
        return None
    return ErpUnavailable  # anything else is a crash on the server ("Application Error")


def _by_dialog(dialogs):
    # Only when no failed call was recorded (the page was loaded meanwhile, e.g.).
    kinds = {d["kind"] for d in dialogs}
    if "concurrency-dialog" in kinds:
        return WorksheetLocked
    if "error-dialog" in kinds:
        return ErpUnavailable  # sao's dialog for a server crash
    return None


def _described(failure):
    if not failure:
        return "nothing recorded"
    parts = [f"HTTP {failure.get('status')}"]
    if failure.get("kind"):
        parts.append(str(failure["kind"])[:80])
    if failure.get("method"):
        parts.append(f"to {failure['method']}")
    return " ".join(parts)

"""Reply classes of SMTP replies: RFC 3463 enhanced codes first, the basic code and command after."""

from __future__ import annotations

import pytest

from newsletter.backends.replies import Stage, classify_smtp, enhanced_code, error_for
from newsletter.errors import AmbiguousDelivery, DeliveryError, RecipientRejected, StopRun, TransientDeliveryError
from newsletter.models import ReplyClass

R, T, S, F = ReplyClass.RECIPIENT, ReplyClass.TRANSIENT, ReplyClass.SENDER, ReplyClass.FAILED


@pytest.mark.parametrize("code, text, stage, expected", [
    (250, "2.0.0 Ok: queued as 4F3", Stage.END, ReplyClass.DELIVERED),
    # temporary, whatever the enhanced code says
    (451, "4.7.1 Greylisted, try again later", Stage.RCPT, T),
    (421, "4.4.2 Connection timed out", Stage.END, T),
    (452, "4.2.2 Mailbox full", Stage.RCPT, T),
    # the address: 5.1.x (not 5.1.7/5.1.8), 5.2.1, and the RFC 7372/7293 account codes
    (550, "5.1.1 <a@b>: Recipient address rejected: User unknown", Stage.RCPT, R),
    (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", Stage.RCPT, R),
    (550, "5.2.1 Mailbox disabled", Stage.RCPT, R),
    (550, "5.7.13 User account disabled", Stage.RCPT, R),
    (550, "5.7.17 Mailbox owner has changed", Stage.END, R),
    (550, "5.1.1 The email account that you tried to reach does not exist", Stage.END, R),
    # the sender, policy, content, protocol, mail system: stop the run
    (553, "5.1.7 Bad sender address syntax", Stage.RCPT, S),
    (553, "5.1.8 Sender domain must exist", Stage.RCPT, S),
    (554, "5.7.1 <a@b>: Relay access denied", Stage.RCPT, S),
    (550, "5.7.1 Message rejected as spam", Stage.END, S),
    (550, "5.7.26 Unauthenticated email from example.org is not accepted due to DMARC", Stage.END, S),
    (552, "5.3.4 Message size exceeds fixed maximum message size", Stage.END, S),
    (554, "5.6.0 Message content rejected", Stage.END, S),
    (501, "5.5.4 Syntax error in parameters", Stage.RCPT, S),
    (550, "5.1.1 whatever it says about an address, it refused our MAIL FROM", Stage.MAIL, S),
    (530, "5.7.0 Authentication required", Stage.MAIL, S),
    # not the address, not everyone: this message fails
    (550, "5.4.4 Unable to route", Stage.RCPT, F),
    (553, "5.6.7 Non-ASCII addresses not permitted for that recipient", Stage.RCPT, F),
    (552, "5.2.3 Message length exceeds administrative limit", Stage.END, F),
    (552, "5.2.2 Mailbox full", Stage.RCPT, T),
    # no enhanced code (or X.0.X): the basic code and the command, conservatively
    (550, "Requested action not taken: mailbox unavailable", Stage.RCPT, R),
    (551, "User not local; please try <forward-path>", Stage.RCPT, R),
    (553, "Requested action not taken: mailbox name not allowed", Stage.RCPT, R),
    (550, "5.0.0 <a@b>: User unknown", Stage.RCPT, R),
    (552, "Too many recipients", Stage.RCPT, T),              # RFC 5321 §4.5.3.1.10
    (554, "Transaction failed", Stage.RCPT, S),
    (550, "Relaying denied", Stage.END, S),                   # after the message: stop, never bounce
    (554, "5.0.0 Message rejected", Stage.END, S),
    (503, "Bad sequence of commands", Stage.DATA, S),
    (354, "Start mail input", Stage.END, S),                  # not a reply that belongs there
])
def test_smtp_replies_are_read_by_their_codes(code, text, stage, expected):
    assert classify_smtp(code, text, stage) is expected


def test_the_words_of_a_reply_never_decide():
    # Same codes, opposite words: same classes.
    assert classify_smtp(550, "5.7.1 user unknown, no such mailbox", Stage.RCPT) is S
    assert classify_smtp(550, "5.1.1 relay access denied, spam, policy", Stage.RCPT) is R
    assert classify_smtp(554, "no such user", Stage.RCPT) is S


@pytest.mark.parametrize("text, expected", [
    ("5.1.1 no such user", (5, 1, 1)), ("  4.7.1 later", (4, 7, 1)), ("5.1.10 x", (5, 1, 10)),
    ("5.1 incomplete", None), ("no code 5.1.1", None), ("5.1.1000 too long", None), ("", None),
])
def test_enhanced_codes_are_found_at_the_start_only(text, expected):
    assert enhanced_code(text) == expected


@pytest.mark.parametrize("kind, error", [(R, RecipientRejected), (T, TransientDeliveryError), (S, StopRun),
                                         (F, DeliveryError), (ReplyClass.AMBIGUOUS, AmbiguousDelivery)])
def test_each_class_has_its_error(kind, error):
    made = error_for(kind, "what happened", "a@example.org", "550 x")
    assert type(made) is error and made.reply_class is kind
    assert (made.recipient, made.reply, str(made)) == ("a@example.org", "550 x", "what happened")

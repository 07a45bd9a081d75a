"""Bounces and complaints after the fact: take reports from any source and apply them.

    report      the Report every intake hands over (kind, source, ids, code, detail)
    codes       RFC 3463 enhanced status codes → hard, soft or blocked
    providers   Postmark, Mailgun, SendGrid webhook bodies → Reports;  ses: Amazon SES over SNS
    signatures  webhook credentials and signatures (basic auth, HMAC, ECDSA, SNS RSA)
    dsn         DSN (RFC 3464) and ARF (RFC 5965) messages → Reports;  mailbox: Maildir and IMAP
    match       a report → its ledger row (Message-ID, VERP token, provider id)
    apply       each report once: suppress, record, pause a list on complaints (pause)
    undo        reactivate subscribers suppressed by mistake
"""

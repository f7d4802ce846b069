"""Logging filters (settings.LOGGING)."""

import logging
import re

# A webhook URL's ?secret= (Octopush, Devino and Hyber authenticate their delivery reports with it).
URL_SECRET = re.compile(r"([?&]secret=)[^&\s\"']+")


class RedactUrlSecrets(logging.Filter):
    """Mask the value of a `secret=` query parameter in a record: the web server logs every request line, and a
    delivery report's carries the account's webhook secret, with which anyone could post reports and opt-outs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = URL_SECRET.sub(r"\1••••", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True

"""Masking a webhook URL's ?secret= wherever Herald shows or logs one: the request lines of runserver
(settings.LOGGING) and of gunicorn (`GunicornLogger`, config/gunicorn.conf.py), and the URL shown to
staff who may only view an account (providers.services.provider_account_webhook_url)."""

import logging
import re

from gunicorn.glogging import Logger

# A webhook URL's ?secret= (Octopush, Devino and Hyber authenticate their delivery reports with it), and the
# ?token= of MOBtexting's webhook handshake (the validation key, derived from the webhook secret).
URL_SECRET = re.compile(r"([?&](?:secret|token)=)[^&\s\"']+")
URL_SECRET_MASK = "••••••"


def redact_url_secrets(text: str) -> str:
    """`text` with the value of every `secret=` (and `token=`) query parameter masked: with the secret, anyone
    could post delivery reports and opt-outs for the account."""
    return URL_SECRET.sub(lambda found: found[1] + URL_SECRET_MASK, text)


class RedactUrlSecrets(logging.Filter):
    """Mask the value of a `secret=` query parameter in a record: the web server logs every request line, and a
    delivery report's carries the account's webhook secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class GunicornLogger(Logger):
    """gunicorn's logger, its access log (`--access-logfile`) and error log without a webhook URL's secret."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactUrlSecrets) for f in log.filters):
                log.addFilter(RedactUrlSecrets())

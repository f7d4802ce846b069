"""gunicorn's settings for Herald: `gunicorn -c config/gunicorn.conf.py config.wsgi …` (README, Production).

Its access log (`--access-logfile`), when turned on, writes each request line: a delivery report's carries the
account's webhook secret, which this logger masks."""

logger_class = "config.log.GunicornLogger"

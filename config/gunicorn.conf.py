"""gunicorn's settings for Herald: `gunicorn -c config/gunicorn.conf.py config.wsgi …` (README, Production).

Its access log (`--access-logfile`), when turned on, writes each request line: a delivery report's carries the
account's webhook secret, which this logger masks."""

logger_class = "config.log.GunicornLogger"

# How long an idle kept-alive connection stays open (gunicorn's default is 2 s). A vendor posting delivery reports
# reuses its connections; one that sends on a connection at the moment gunicorn closes it gets a reset, and a
# vendor that retries only a 500 (Devino) never sends that report again, with no API to ask for it. Kept longer than
# the clients' and load balancers' own idle limits (60 s for nginx's upstream keep-alive and AWS's ALB), the client
# is the side that closes, and nothing it sends is cut off. An idle connection costs no thread (gthread).
keepalive = 75

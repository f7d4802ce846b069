"""Herald's web app as the test suite's web server serves it.

The server lives for the whole session, while the flush after each transactional test empties every table and
re-creates the content types under new ids. A content type the app cached in one test (an admin page reads them)
would then name a row gone in the next: the admin's history entry of a save failed its foreign key (a 500). So the
app forgets its cached content types before each request, as a freshly started server would have none."""

from config.wsgi import application as herald


def application(environ, start_response):
    from django.contrib.contenttypes.models import ContentType  # once config.wsgi has loaded the apps

    ContentType.objects.clear_cache()
    return herald(environ, start_response)

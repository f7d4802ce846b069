"""What every editable admin page shares."""

from psycopg.errors import UniqueViolation

from django.db import IntegrityError


class UniqueRaceAdmin:
    """A save that lost a race on a unique value gets the form back with the field's message, not a 500.

    The form checks uniqueness with a query, so two staff saving the same value at once both pass it, and the
    database's unique index stops the second: IntegrityError, and the admin's transaction rolls back (nothing
    is saved). The page is then handled once more, and this time the form's check sees the winner's row and
    names the field, with what the person typed still in the form."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except IntegrityError as error:
            if request.method != "POST" or not isinstance(error.__cause__, UniqueViolation):
                raise
            return super().changeform_view(request, object_id, form_url, extra_context)

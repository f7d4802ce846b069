"""The page-number pagination of every list but the messages' (cursor pages, campaigns/api.py).

`?page=N` walks the pages; `?page_size=N` (1 to 1000) sets their size, as it does on the messages' list. A page
past the end is a 404 that says which page and why; a page size that is no whole number from 1 up is a 400 naming
page_size."""

import re

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination as DrfPageNumberPagination


class StrictPageSizeMixin:
    """`?page_size=` that is no whole number from 1 up (`abc`, `0`, `-5`, `1.5`) is a 400 naming it: DRF answered
    pages of the default size instead, so a client asking for `?page_size=all` got 50 and took them for all. Empty
    is not given; more than the maximum is taken as the maximum, as before."""

    def get_page_size(self, request):
        given = request.query_params.get(self.page_size_query_param, "").strip()
        if given and not (re.fullmatch(r"[0-9]+", given) and int(given) > 0):
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Give a whole number from 1 to {self.max_page_size}."]}
            )
        return super().get_page_size(request)


class PagesSchemaMixin:
    """A page's answer always has every key its schema lists (`next` and `previous` null at the ends): all required,
    as config.schema.AutoSchema makes every answer's fields. Its links' examples are URLs (DRF's cursor example ended in
    a stray `"`), and `page_size` gives its bounds and default as numbers too, for a generated client to check."""

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["required"] = sorted(answer["properties"])
        for link in ("next", "previous"):
            answer["properties"][link]["example"] = answer["properties"][link]["example"].rstrip('"')
        return answer

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
        return parameters


class PageNumberPagination(PagesSchemaMixin, StrictPageSizeMixin, DrfPageNumberPagination):
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page, 1 to 1000 (50 unless given); more is taken as 1000."
    max_page_size = 1000
    invalid_page_message = "Invalid page {page_number}: {message}."

"""The page-number pagination of every list but the messages' (cursor pages, campaigns/api.py), and the admin's.

`?page=N` walks the pages; `?page_size=N` (1 to 1000) sets their size, as it does on the messages' list. A page
past the end is a 404 that says which page and why; a page or page size that is no whole number from 1 up is a 400
naming page or page_size."""

import re

from django.core.paginator import Paginator
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination as DrfPageNumberPagination

DEEP_PAGE_ROWS = 1000  # past this many rows, a page's ids are found first (DeepPagePaginator)


class DeepPagePaginator(Paginator):
    """Pages deep in a large list (its last page is one of its page links) without building every row before them.

    A page is LIMIT n OFFSET k: PostgreSQL builds and throws away the k rows before it, each with its joined rows
    and all its columns (3 s for the last page of 500,000 delivery reports). Past DEEP_PAGE_ROWS, the page's ids
    are found first by the same query selecting the id alone, which the primary key's index answers for a list in
    id order, then its rows by those ids, in the list's order."""

    def _get_page(self, object_list, number, paginator):
        query = getattr(object_list, "query", None)
        if query is not None and query.low_mark >= DEEP_PAGE_ROWS:
            object_list = self.object_list.filter(pk__in=list(object_list.values_list("pk", flat=True)))
        return super()._get_page(object_list, number, paginator)


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


class StrictPageNumberMixin:
    """`?page=` that is no whole number from 1 up (`abc`, `0`, `1.5`) is a 400 naming it, as a wrong page size is: it
    was a 404, "Invalid page.", as for a page past the end, which it is not. Empty is not given (page 1), and DRF's
    `last` still names the last page."""

    def get_page_number(self, request, paginator):
        given = request.query_params.get(self.page_query_param, "").strip()
        if given and given not in self.last_page_strings and not (re.fullmatch(r"[0-9]+", given) and int(given) > 0):
            raise exceptions.ValidationError({self.page_query_param: ["Give a page number, a whole number from 1."]})
        return super().get_page_number(request, paginator)


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
            elif parameter["name"] == getattr(self, "page_query_param", None):
                parameter["schema"].update(minimum=1)
        return parameters


class PageNumberPagination(PagesSchemaMixin, StrictPageNumberMixin, StrictPageSizeMixin, DrfPageNumberPagination):
    django_paginator_class = DeepPagePaginator
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page, 1 to 1000 (50 unless given); more is taken as 1000."
    max_page_size = 1000
    invalid_page_message = "Invalid page {page_number}: {message}."

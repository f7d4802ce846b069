"""The page-number pagination of every list but the messages' (cursor pages, campaigns/api.py).

`?page=N` walks the pages; `?page_size=N` (1 to 1000) sets their size, as it does on the messages' list. A page
past the end is a 404 that says which page and why."""

from rest_framework.pagination import PageNumberPagination as DrfPageNumberPagination


class PageNumberPagination(DrfPageNumberPagination):
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page, 1 to 1000 (50 unless given); more is taken as 1000."
    max_page_size = 1000
    invalid_page_message = "Invalid page {page_number}: {message}."

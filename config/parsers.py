"""The API's JSON parser (apart from config.api, which imports DRF's views: the settings import this module)."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's, where JSON nested deeper than the parser goes (RecursionError, not the ValueError DRF catches) is
    the 400 any other bad JSON gets, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None

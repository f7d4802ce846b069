"""Dates and times on the admin's pages as Herald's own pages say them (`config.times.time_shown`): "2026-11-27
03:30 UTC", the zone named, rather than Django's English default "Nov. 27, 2026, 3:30 a.m." without one. Lists,
read-only fields and `|date` without a format read these; what staff type is read as before (the input formats are
Django's)."""

DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"

"""MOBtexting's status vocabulary and its mapping onto Herald's canonical statuses.

Two vocabularies reach us, in the DLR push, the DLR pull and the send response rows:

- status words: the lifecycle words of the pull API (SCHEDULED, ENROUTE/EN_ROUTE, DELIVERED, EXPIRED,
  DELETED, UNDELIVERABLE [seed 001:2435-2443]) and the short SMPP spellings (AWAITING-DLR, DELIVRD, UNDELIV);
- the error code table, 000-463 and the DLT family 777-792 [seed 001:2676-2749], each with its own
  status word, plus the Smart Delivery spellings of DLT rejections (DLT-REJECTED, INV-PEID, INV-TMID,
  INV-ENTITY, INV-TEMPLATE [seed 001:9744]).

A report usually carries only the word; a numeric code, when present, is the more precise of the two.
"""

from __future__ import annotations

from collections import Counter

from providers.backends.base import Status

# Vendor status word → canonical status (courier's statusMapping).
STATUS_MAP: dict[str, Status] = {
    # Lifecycle words [seed 001:2435-2443] and their SMPP spellings.
    "AWAITING-DLR": Status.SUBMITTED,
    "SCHEDULED": Status.SUBMITTED,
    "ENROUTE": Status.SENT,
    "EN_ROUTE": Status.SENT,
    "DELIVRD": Status.DELIVERED,
    "DELIVERED": Status.DELIVERED,
    "UNDELIV": Status.UNDELIVERED,
    "UNDELIVERABLE": Status.UNDELIVERED,
    "EXPIRED": Status.EXPIRED,
    "DELETED": Status.FAILED,  # cancelled or deleted at the message centre: it never went out
    "REJECTD": Status.REJECTED,
    # Operator outcomes from the code table (0xx).
    "INVALID-SUB": Status.UNDELIVERED,
    "ABSENT-SUB": Status.UNDELIVERED,
    "HANDSET-ERR": Status.UNDELIVERED,
    "HANDSET-BUSY": Status.UNDELIVERED,
    "BARRED": Status.UNDELIVERED,
    "NET-ERR": Status.UNDELIVERED,
    "MEMEXEC": Status.UNDELIVERED,
    "MOB-OFF": Status.UNDELIVERED,
    "SERIES-BLK": Status.UNDELIVERED,
    "FAILED": Status.UNDELIVERED,  # the word alone; code 462 FAILED is a platform failure (ERROR_CODES)
    "REJ-MULTIPART": Status.UNDELIVERED,
    # Platform refusals (4xx).
    "SERIES-BLOCK": Status.REJECTED,
    "NO-CREDITS": Status.REJECTED,
    "NO-ACCOUNT": Status.REJECTED,
    "SERVER-ERR": Status.FAILED,
    "INV-NUMBER": Status.REJECTED,
    "SPAM": Status.REJECTED,
    "DNDNUMB": Status.REJECTED,
    "BLACKLST": Status.REJECTED,
    "SNDR-BLOCK": Status.REJECTED,
    "TEMPLATE-NOT-FOUND": Status.REJECTED,
    "INV-TEMPLATE": Status.REJECTED,
    "INV-SENDER": Status.REJECTED,
    "NOT-OPTIN": Status.REJECTED,
    "OPTOUT-REJ": Status.REJECTED,
    "PROMO-TMOUT": Status.REJECTED,
    "REJECTED": Status.REJECTED,
    "NOTALLOWED": Status.REJECTED,
    "DUPLICATE": Status.REJECTED,
    "THROTTLED": Status.REJECTED,
    # DLT scrubbing (777-792) and the Smart Delivery spellings.
    "DLT-REJECTED": Status.REJECTED,
    "DLT-INV-TMID": Status.REJECTED,
    "DLT-INV-ENTITY": Status.REJECTED,
    "DLT-INV-TM-ID": Status.REJECTED,
    "DLT-TM-VAR-EXECEED": Status.REJECTED,
    "DLT-ENTITY-NOT-FOUND": Status.REJECTED,
    "DLT-TM-BLACKLST": Status.REJECTED,
    "DLT-ENTITY-BLACKLST": Status.REJECTED,
    "DLT-HEADER-INACTIVE": Status.REJECTED,
    "DLT-TM-INACTIVE": Status.REJECTED,
    "DLT-SENDER-NOT-REG-TM": Status.REJECTED,
    "INV-PROVISION": Status.REJECTED,
    "INV-SERVICE": Status.REJECTED,
    "INV-SCHEDULE": Status.REJECTED,
    "INV-PEID": Status.REJECTED,
    "INV-TMID": Status.REJECTED,
    "INV-ENTITY": Status.REJECTED,
}

U, R, F = Status.UNDELIVERED, Status.REJECTED, Status.FAILED

# Vendor code → (status word, canonical status, the vendor's description) [seed 001:2676-2749].
ERROR_CODES: dict[str, tuple[str, Status, str]] = {
    "000": ("DELIVRD", Status.DELIVERED, "Delivered to SIM."),
    "001": ("INVALID-SUB", U, "Unidentified subscriber."),
    "002": ("INVALID-SUB", U, "Illegal subscriber"),
    "003": ("ABSENT-SUB", U, "Unidentified subscriber."),
    "004": ("HANDSET-ERR", U, "Illegal equipment"),
    "005": ("BARRED", U, "SMS is prohibited."),
    "006": ("HANDSET-ERR", U, "MS does not support SMS."),
    "007": ("HANDSET-ERR", U, "MS is receiving an error."),
    "008": ("NET-ERR", U, "Facility not supported."),
    "009": ("MEMEXEC", U, "Handset memory is full."),
    "010": ("ABSENT-SUB", U, "Absent subscriber"),
    "011": ("FAILED", U, "SMSC system failure"),
    "012": ("NET-ERR", U, "Gateway mobile switching error"),
    "013": ("MOB-OFF", U, "Mobile handset switched off"),
    "014": ("FAILED", U, "SMS is undelivered due to roaming limitations."),
    "015": ("INVALID-SUB", U, "Unidentified subscriber"),
    "016": ("HANDSET-BUSY", U, "Subscriber is busy."),
    "017": ("NET-ERR", U, "Resources cannot be used at the GMSC level."),
    "018": ("SERIES-BLK", U, "Series blocked"),
    "019": ("NET-ERR", U, "Submission error or invalid input data"),
    "020": ("BARRED", U, "CUG reject"),
    "021": ("EXPIRED", Status.EXPIRED, "SMS timeout"),
    "034": ("UNDELIV", U, "Unknown Error"),
    "045": ("FAILED", U, "Unknown Error"),
    "099": ("UNDELIV", U, "Unknown Error"),
    "400": ("SERIES-BLOCK", R, "Series has been temporarily or permanently blocked."),
    "401": ("NO-CREDITS", R, "Credit exhausted."),
    "402": ("NO-ACCOUNT", R, "Invalid account."),
    "403": ("SERVER-ERR", F, "Unknown Error"),
    "404": ("INV-NUMBER", R, "Invalid destination number"),
    "405": ("SERVER-ERR", F, "ESME client error"),
    "406": ("SERVER-ERR", F, "ESME client error"),
    "407": ("SPAM", R, "Sent illegal content"),
    "408": ("DNDNUMB", R, "Number registered in the DND database."),
    "430": ("SERVER-ERR", F, "Unknown Error"),
    "431": ("SERVER-ERR", F, "Unknown Error"),
    "432": ("SERVER-ERR", F, "Unknown Error"),
    "433": ("SERVER-ERR", F, "Unknown Error"),
    "450": ("BLACKLST", R, "Number blocklisted to receive messages"),
    "451": ("SNDR-BLOCK", R, "Sender ID has been blocked."),
    "452": ("TEMPLATE-NOT-FOUND", R, "No matching templates"),
    "453": ("INV-TEMPLATE", R, "Message rejected as template not allotted for ESME"),
    "454": ("INV-SENDER", R, "Message rejected as sender ID not allotted for ESME"),
    "455": ("NOT-OPTIN", R, "Message rejected as number not in optin list"),
    "456": ("OPTOUT-REJ", R, "Rejected as a number optout to receive messages"),
    "457": ("PROMO-TMOUT", R, "Promotional time exceeded"),
    "458": ("REJECTED", R, "Unknown Error"),
    "459": ("NOTALLOWED", R, "Country is not allowed to send SMS."),
    "460": ("DUPLICATE", R, "Same content was sent."),
    "461": ("UNDELIV", U, "Unknown Error"),
    "462": ("FAILED", F, "Unknown Error"),
    "463": ("THROTTLED", R, "Maximum Sent Limit is Reached"),
    "777": ("DLT-REJECTED", R, "Invalid sender ID or invalid template"),
    "778": ("REJ-MULTIPART", U, "All message parts are not delivered to the handset."),
    "780": ("DLT-INV-TMID", R, "Invalid DLT Telemarketer ID"),
    "781": ("DLT-INV-ENTITY", R, "Invalid Entity DLT ID"),
    "782": ("DLT-INV-TM-ID", R, "Invalid DLT Template ID"),
    "783": ("DLT-TM-VAR-EXECEED", R, "Template variable exceeded 30 characters."),
    "784": ("DLT-ENTITY-NOT-FOUND", R, "Entity ID not found"),
    "785": ("DLT-TM-BLACKLST", R, "Template ID is blacklisted."),
    "786": ("DLT-ENTITY-BLACKLST", R, "Entity ID is blacklisted."),
    "787": ("DLT-HEADER-INACTIVE", R, "Sender Inactive"),
    "788": ("DLT-TM-INACTIVE", R, "Template is inactive."),
    "789": ("DLT-SENDER-NOT-REG-TM", R, "Sender is not registered for the template."),
    "790": ("INV-PROVISION", R, "Sender Invalid Provision"),
    "791": ("INV-SERVICE", R, "Invalid Service Type"),
    "792": ("INV-SCHEDULE", R, "Invalid Schedule"),
}

# A word names a code only when exactly one code uses it (UNDELIV is 034, 099 and 461).
_WORD_COUNTS = Counter(word for word, _status, _text in ERROR_CODES.values())
CODE_OF_WORD: dict[str, str] = {
    word: code for code, (word, _status, _text) in ERROR_CODES.items() if _WORD_COUNTS[word] == 1
}

# A failure word that no single code stands for still reads as words: the pull API's lifecycle words in the
# seed's own terms [seed 001:2435-2443] (UNDELIV is UNDELIVERABLE's SMPP spelling), and a word several codes share
# (HANDSET-ERR is 004, 006 and 007) as what those codes say, any of which it may be.
_UNDELIVERABLE = (
    "Message is undeliverable. The message has encountered a delivery error and is deemed permanently undeliverable."
)
WORD_TEXTS: dict[str, str] = {
    **{
        word: " / ".join(dict.fromkeys(text.rstrip(".") for w, _status, text in ERROR_CODES.values() if w == word))
        for word, count in _WORD_COUNTS.items()
        if count > 1
    },
    "UNDELIVERABLE": _UNDELIVERABLE,
    "UNDELIV": _UNDELIVERABLE,
    "DELETED": "Message has been deleted. The message has been cancelled or deleted from the MC.",
    "REJECTD": "Message is in a rejected state.",  # SMPP v3.4's message_state REJECTED
    # Smart Delivery's DLT rejection words [seed 001:9744], which the seed names without describing.
    "INV-PEID": "DLT rejection: invalid principal entity (PE) id.",
    "INV-TMID": "DLT rejection: invalid template or telemarketer id.",
    "INV-ENTITY": "DLT rejection: invalid entity id.",
}


def classify(raw_status: str, code: str = "") -> tuple[Status | None, str, str]:
    """(canonical status or None when unknown, vendor code, vendor text) for a word and an optional code."""
    word = (raw_status or "").strip().upper()
    code = (code or "").strip()
    if code.isdigit() and len(code) < 3:
        code = code.zfill(3)  # "0" and "21" arrive from clients that send the code as a number
    if code in ERROR_CODES:
        _word, status, text = ERROR_CODES[code]
        return status, code, text
    code = code or CODE_OF_WORD.get(word, "")
    text = ERROR_CODES[code][2] if code in ERROR_CODES else WORD_TEXTS.get(word, "")
    return STATUS_MAP.get(word), code, text


# What a failure code means, in words a person acts on (Backend.code_words): DLT scrubbing (777-792) and the
# platform refusals staff meet most.
CODE_WORDS: dict[str, str] = {
    "777": "DLT refused the sender ID or the template: check both are registered and linked.",
    "778": "Only some parts of this long message reached the phone.",
    "780": "The telemarketer (TM) id registered on DLT is not valid.",
    "781": "The principal entity (PE) id is not valid: check the sender's DLT entity id.",
    "782": "The DLT template id is not valid: check the template's id against the DLT portal.",
    "783": "A variable's value is longer than the 30 characters DLT allows.",
    "784": "DLT does not know this entity id.",
    "785": "DLT has blacklisted this template.",
    "786": "DLT has blacklisted this entity.",
    "787": "The sender ID (header) is inactive on DLT.",
    "788": "The template is inactive on DLT.",
    "789": "The sender ID is not registered for this template on DLT.",
    "790": "The sender ID is not provisioned correctly on DLT.",
    "791": "The service type (transactional, promotional…) does not match the sender or template.",
    "792": "The schedule is not allowed (promotional messages only in permitted hours).",
    "401": "The MOBtexting account has run out of credit.",
    "404": "The number is not a valid mobile number.",
    "408": "The number is on the Do-Not-Disturb registry, which refuses promotional messages.",
    "450": "The number is blocklisted from receiving messages.",
    "451": "The sender ID has been blocked.",
    "452": "No registered template matches the text.",
    "456": "The recipient opted out of these messages.",
    "457": "Promotional messages are not allowed at this hour.",
    "460": "The same text was already sent to this number.",
    "463": "The account's sending limit was reached.",
    "009": "The phone's memory is full.",
    "013": "The phone was switched off.",
    "021": "The phone did not come back in reach before the message timed out.",
}

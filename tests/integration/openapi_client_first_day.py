"""tests/integration/openapi_client_first_day.py - the CRM's first day, written
with nothing but the client openapi-python-client generated from
docs/openapi.yaml (test_openapi_client.c generates it, puts it on
PYTHONPATH as blazz_client and runs this against a real ingest).

What a CRM does on its first day: find its session, find a contact by phone
and read it, send that contact a text (twice with one idempotency key: one
message), page through the conversation with a cursor and read one of its
messages' status, mark the conversation read, store a PDF and a JPEG (the
client declares one Content-Type for every file) and read their facts
back. Each answer must be the documented success model; an error model (the
generated client parses those too) fails the run with its reason and field.

Settings come from the environment (BLAZZ_CLIENT_URL, BLAZZ_CLIENT_KEY,
BLAZZ_CLIENT_SESSION, BLAZZ_CLIENT_PHONE, BLAZZ_CLIENT_MESSAGES: how many
messages the test put in the conversation). Prints one line a step; exits 1
at the first step that fails.
"""

import os
import sys

from blazz_client import AuthenticatedClient
from blazz_client.api.crm import (find_contact, get_contact, get_media, get_message,
                                  get_session, list_contact_messages, list_sessions,
                                  mark_chat_read, send_message, upload_media)
from blazz_client.models import (Contact, ListSessionsResponse200,
                                 MarkReadRequest, MediaInfo, MediaStored, MessagePage,
                                 MessageState, ReadAccepted, SendAccepted, SendMessageRequest,
                                 SessionState)
from blazz_client.types import UNSET, File

# The smallest file the media sniffer takes as application/pdf.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
# SOI, a JFIF APP0 segment, EOI: the smallest JPEG a sniffer knows.
JPEG = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        b"\xff\xd9")
PAGE = 2


def expect(what, answer, model):
    """The parsed answer of a step, which must be the model of its success."""
    if not isinstance(answer, model):
        detail = getattr(answer, "to_dict", lambda: answer)()
        sys.exit(f"{what}: expected {model.__name__}, got {detail}")
    print(f"ok  {what}")
    return answer


def main():
    client = AuthenticatedClient(base_url=os.environ["BLAZZ_CLIENT_URL"],
                                 token=os.environ["BLAZZ_CLIENT_KEY"])
    session = os.environ["BLAZZ_CLIENT_SESSION"]
    phone = os.environ["BLAZZ_CLIENT_PHONE"]
    stored = int(os.environ["BLAZZ_CLIENT_MESSAGES"])

    sessions = expect("list sessions", list_sessions.sync(client=client),
                      ListSessionsResponse200).sessions
    if session not in [s.session_id for s in sessions]:
        sys.exit(f"list sessions: {session} is not among {[s.session_id for s in sessions]}")
    expect("get session", get_session.sync(session, client=client), SessionState)

    contact = expect("find contact by phone",
                     find_contact.sync(client=client, phone=phone),
                     Contact)
    expect("get contact", get_contact.sync(str(contact.contact_id), client=client), Contact)

    send = SendMessageRequest(idempotency_key="first-day-1", contact_id=contact.contact_id,
                              message_type="text", body="Selamat pagi")
    first = expect("send message", send_message.sync(client=client, body=send), SendAccepted)
    again = expect("send it again", send_message.sync(client=client, body=send), SendAccepted)
    if again.message_id != first.message_id:
        sys.exit(f"one idempotency key, two messages: {first.message_id}, {again.message_id}")

    seen, cursor = [], None
    while True:
        page = expect(f"conversation page {len(seen) // PAGE + 1}",
                      list_contact_messages.sync(str(contact.contact_id), client=client,
                                                 limit=PAGE, cursor=cursor or UNSET),
                      MessagePage)
        seen += page.messages
        cursor = page.next_cursor
        if not cursor:
            break
    if len(seen) < stored or len({m.message_id for m in seen}) != len(seen):
        sys.exit(f"pages: {len(seen)} messages, {len({m.message_id for m in seen})} distinct, "
                 f"at least {stored} stored")
    status = expect("get message", get_message.sync(seen[0].message_id, client=client),
                    MessageState)
    if status.contact_id != contact.contact_id:
        sys.exit(f"get message: contact {status.contact_id}, not {contact.contact_id}")

    expect("mark read", mark_chat_read.sync(
        client=client, body=MarkReadRequest(contact_id=contact.contact_id)), ReadAccepted)

    for payload, name, mime in ((PDF, "offer.pdf", "application/pdf"),
                                (JPEG, "photo.jpg", "image/jpeg")):
        media = expect(f"upload {name}", upload_media.sync(
            client=client, body=File(payload=payload, file_name=name, mime_type=mime),
            filename=name), MediaStored)
        info = expect(f"get {name}", get_media.sync(media.media_uuid, client=client), MediaInfo)
        if info.size != len(payload) or info.type_ != mime:
            sys.exit(f"get {name}: {info.size} bytes of {info.type_}, "
                     f"not {len(payload)} of {mime}")


if __name__ == "__main__":
    main()

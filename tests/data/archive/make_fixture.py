#!/usr/bin/env python3
"""Writes messages.json beside this script: the small export of the archive tests, one
message of every type FORMAT.md lists (and an unknown one), in five conversations. Kept so
the fixture can be changed and written again; the tests read the committed messages.json."""
import json, os

OWNER = "8:live:.cid.owner"
n = [1700000000000]  # 2023-11-14 22:13:20 UTC


def msg(mtype, content, sender="8:alice", name="Alice", t=None, props=None, ams=None, mid=None,
        arrival=True):
    n[0] += 61_000
    t = n[0] if t is None else t
    m = {"id": str(mid or t), "displayName": None if sender == OWNER else name,
         "messagetype": mtype, "version": float(t), "content": content,
         "from": sender, "properties": props, "amsreferences": ams}
    if arrival:
        import datetime
        d = datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc)
        m["originalarrivaltime"] = d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t % 1000)
    return m


def conv(cid, display, msgs, topic=None, members=None):
    tp = None
    if topic is not None or members is not None:
        tp = {"membercount": len(members or []), "members": json.dumps(members or [])}
        if topic is not None:
            tp["topic"] = topic
    return {"id": cid, "displayName": display, "version": 1.0, "properties": None,
            "threadProperties": tp, "MessageList": list(reversed(msgs))}


family = [
    msg("ThreadActivity/AddMember",
        "<addmember><eventtime>1700000060000</eventtime><initiator>8:live:.cid.owner</initiator>"
        "<target>8:alice</target><target>8:bob</target></addmember>", sender=OWNER),
    msg("ThreadActivity/TopicUpdate",
        "<topicupdate><eventtime>1700000120000</eventtime><initiator>8:alice</initiator>"
        "<value>Family, chat</value></topicupdate>"),
    msg("RichText", "Hello <b raw_pre=\"*\" raw_post=\"*\">everyone</b>, see "
        "<a href=\"https://example.org/a?b=1\">https://example.org/a?b=1</a> "
        "<at id=\"8:bob\">Bob</at> <ss type=\"smile\">:)</ss>",
        props={"emotions": [{"key": "like", "users": [{"mri": "8:bob", "time": 1700000200000}]}]}),
    msg("Text", "a <literal> tag, \"quoted\", and a comma\nsecond line\r\nthird line", sender="8:bob",
        name="Bob"),
    msg("RichText", "<quote author=\"8:alice\" authorname=\"Alice\" timestamp=\"1700000180\">"
        "<legacyquote>[1700000180] Alice: </legacyquote>Hello everyone<legacyquote>\n\n&lt;&lt;&lt; "
        "</legacyquote></quote>Hi back", sender=OWNER),
    msg("RichText", "Fixed typo<e_m ts=\"1700000400\" ts_ms=\"1700000400000\" a=\"alice\" t=\"61\"/>",
        props={"edittime": "1700000400000"}),
    msg("RichText", "", sender="8:bob", name="Bob", props={"deletetime": "1700000500000"}),
    msg("RichText/Html", "<p>Some <i>html</i> &amp; entities &#128512;</p>"),
    msg("RichText/UriObject",
        "<URIObject type=\"Picture.1\" uri=\"https://api.asm.skype.com/v1/objects/0-pic\" "
        "url_thumbnail=\"https://api.asm.skype.com/v1/objects/0-pic/views/imgt1\" doc_id=\"0-pic\" "
        "width=\"640\" height=\"480\">To view this shared photo, go to: "
        "<a href=\"https://login.skype.com/login/sso?go=xmmfallback?pic=0-pic\">link</a>"
        "<OriginalName v=\"cat.jpg\"/><FileSize v=\"12345\"/><meta type=\"photo\" "
        "originalName=\"cat.jpg\"/></URIObject>", ams=["0-pic"]),
    msg("RichText/Media_GenericFile",
        "<URIObject type=\"File.1\" uri=\"https://api.asm.skype.com/v1/objects/0-doc\" "
        "doc_id=\"0-doc\">To view this file, go to: <a href=\"https://login.skype.com/x\">link</a>"
        "<OriginalName v=\"report, final.pdf\"/><FileSize v=\"54321\"/></URIObject>",
        sender="8:bob", name="Bob", ams=["0-doc"]),
    msg("RichText/Media_Video",
        "<URIObject type=\"Video.1/Message.1\" uri=\"https://api.asm.skype.com/v1/objects/0-vid\" "
        "doc_id=\"0-vid\">video<OriginalName v=\"clip.mp4\"/><FileSize v=\"999\"/></URIObject>"),
    msg("RichText/Media_AudioMsg",
        "<URIObject type=\"Audio.1/Message.1\" uri=\"https://api.asm.skype.com/v1/objects/0-aud\" "
        "doc_id=\"0-aud\">voice<OriginalName v=\"voice.m4a\"/><FileSize v=\"777\"/></URIObject>",
        sender=OWNER),
    msg("RichText/Media_Album",
        "<URIObject type=\"Picture.1\" uri=\"https://api.asm.skype.com/v1/objects/0-alb\" "
        "doc_id=\"0-alb\">album<OriginalName v=\"a1.png\"/></URIObject>",
        props={"albumId": "album-1"}),
    msg("RichText/Media_Card",
        "<URIObject type=\"SWIFT.1\"><Swift b64=\"eyJ0eXBlIjoibWVzc2FnZS9jYXJkIiwidGV4dCI6IkNhcmQifQ==\"/>"
        "</URIObject>", sender="28:concierge", name="Concierge"),
    msg("RichText/Media_FlikMsg",
        "<URIObject type=\"Video.1/Flik.1\" uri=\"https://api.asm.skype.com/v1/objects/0-flik\">"
        "flik</URIObject>"),
    msg("RichText/Media_CallRecording",
        "<URIObject type=\"Video.2/CallRecording.1\" uri=\"https://api.asm.skype.com/v1/objects/0-rec\" "
        "doc_id=\"0-rec\">recording<OriginalName v=\"call.mp4\"/></URIObject>", sender=OWNER),
    msg("RichText/Files", "<files><file index=\"0\" size=\"123\" url=\"https://example.org/f.pdf\">"
        "f.pdf</file></files>", sender="8:bob", name="Bob"),
    msg("RichText/Contacts", "<contacts><c t=\"s\" s=\"carol\" f=\"Carol Smith\"/></contacts>"),
    msg("RichText/Location", "<location latitude=\"59436810\" longitude=\"24740695\" "
        "address=\"Tallinn, Estonia\"><a href=\"https://www.bing.com/maps\">Tallinn</a></location>",
        sender=OWNER),
    msg("RichText/ScheduledCallInvite", "<scheduledcall><title>Weekly</title></scheduledcall>"),
    msg("Event/Call", "<partlist type=\"started\" alt=\"\" callId=\"call-1\">"
        "<part identity=\"8:alice\"><name>Alice</name></part></partlist>"),
    msg("Event/Call", "<partlist type=\"ended\" alt=\"\" callId=\"call-1\">"
        "<part identity=\"8:alice\"><name>Alice</name><duration>84.82</duration></part>"
        "<part identity=\"8:bob\"><name>Bob</name><duration>80.00</duration></part></partlist>"),
    msg("Poll", "<Poll><question>Pizza?</question><option>Yes</option><option>No</option></Poll>"),
    msg("Notice", json.dumps([{"title": "Notice title", "text": "Something changed"}]),
        sender="28:concierge", name="Concierge"),
    msg("PopCard", json.dumps([{"content": {"title": "Pop"}}]), sender="28:concierge",
        name="Concierge"),
    msg("ThreadActivity/DeleteMember",
        "<deletemember><eventtime>1700002000000</eventtime><initiator>8:alice</initiator>"
        "<target>8:carol</target></deletemember>"),
    msg("ThreadActivity/PictureUpdate",
        "<pictureupdate><eventtime>1700002100000</eventtime><initiator>8:alice</initiator>"
        "<value>URL@https://api.asm.skype.com/v1/objects/0-avatar/views/avatar_fullsize</value>"
        "</pictureupdate>"),
    msg("ThreadActivity/RoleUpdate",
        "<roleupdate><eventtime>1700002200000</eventtime><initiator>8:live:.cid.owner</initiator>"
        "<target><id>8:alice</id><role>admin</role></target></roleupdate>", sender=OWNER),
    msg("ThreadActivity/HistoryDisclosedUpdate",
        "<historydisclosedupdate><eventtime>1700002300000</eventtime><initiator>8:alice</initiator>"
        "<value>true</value></historydisclosedupdate>"),
    msg("ThreadActivity/JoiningEnabledUpdate",
        "<joiningenabledupdate><eventtime>1700002400000</eventtime><initiator>8:alice</initiator>"
        "<value>false</value></joiningenabledupdate>"),
    msg("ThreadActivity/E2EEHandshakeInvite", "", sender=OWNER),
    msg("ThreadActivity/E2EEHandshakeAccept", "", sender="8:bob", name="Bob"),
    msg("ThreadActivity/E2EEHandshakeComplete", "", sender=OWNER),
    msg("ThreadActivity/E2EEHandshakeReject", "", sender="8:bob", name="Bob"),
    msg("EndToEndEncryption/EncryptedText", "encrypted", sender="8:bob", name="Bob"),
    msg("EndToEndEncryption/EncryptedMedia", "encrypted", sender="8:bob", name="Bob"),
    msg("RichText/SomethingNew", "a type nobody knows <b>yet</b>"),
    msg("RichText", "sent with no time", mid="no-time", arrival=False),
    # The next day, 2023-11-15 UTC, a server-generated duplicate-looking one.
    msg("RichText", "next day", t=1700092800000, props={"isserversidegenerated": True}),
]

bob = [
    msg("RichText", "Hi Bob", sender=OWNER, t=1700100000000),
    msg("RichText", "Hi!", sender="8:bob", name="Bob", t=1700100060000),
    msg("Event/Call", "<partlist type=\"missed\" alt=\"\" callId=\"call-2\">"
        "<part identity=\"8:bob\"><name>Bob</name></part></partlist>", sender="8:bob", name="Bob",
        t=1700100120000),
]

p2p = [
    msg("RichText", "old group", sender="8:carol", name="Carol", t=1600000000000),
    msg("RichText", "still here", sender=OWNER, t=1600000060000),
]

bot = [
    msg("InviteFreeRelationshipChanged/Initialized", "", sender="28:concierge", name="Concierge",
        t=1690000000000),
    msg("Event/BingBot", "bot event", sender="28:concierge", name="Concierge", t=1690000060000),
]

hostile = [
    msg("RichText", "<script>alert(1)</script>", sender="8:mallory", name="Mal\nlory",
        t=1650000000000),
]

doc = {"userId": "live:.cid.owner", "exportDate": "2025-04-30T10:13", "conversations": [
    conv("19:family@thread.skype", "Family", family, topic="Family chat",
         members=["8:live:.cid.owner", "8:alice", "8:bob"]),
    conv("8:bob", None, bob),
    conv("19:I3p2p@p2p.thread.skype", None, p2p, members=["8:live:.cid.owner", "8:carol"]),
    conv("28:concierge", "Concierge", bot),
    conv("19:evil@thread.skype", "../../etc/passwd\u0007 <b>", hostile, topic="x",
         members=["8:mallory"]),
]}

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "messages.json"), "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1, ensure_ascii=False)
    f.write("\n")

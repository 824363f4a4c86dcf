"""ContentfulMcpDestination against answers shaped as the hosted Contentful MCP server really shapes them.

The hosted server (``contentful/contentful-mcp-server``) answers ``"<message>: \\n"`` plus the CMA's JSON
rendered by fast-xml-parser's ``XMLBuilder`` (``utils/formatters.ts``): keys become tags, arrays repeated
tags, booleans and numbers text, and values are not escaped. The fixtures below are written by hand in that
shape around CMA entries as the CMA records them (contentful-management.py's cassettes: ``sys.id`` first,
``createdBy`` / ``space`` / ``contentType`` links after it, ``fields`` before ``sys``). Earlier the
connector scraped a JSON ``<fields>`` block and an ``<id>`` right after ``</space>``, neither of which the
real server sends: every create was a "no entry id" error (and an orphaned entry each pass), and every
update rewrote every managed field, dropping the field's other locales.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from connectors.contentful.encode import ContentTypeSpec
from connectors.contentful.mcp import (
    ContentfulMcpDestination,
    content_type_of,
    entry_id_of,
    fields_of,
    published_version_of,
    version_of,
)
from connectors.core import Record, RecordError
from connectors.http import HttpSettings
from tests.connectors.contentful_mcp.conftest import FAST
from tests.fakes.contentful import FakeContentful
from tests.fakes.contentful_mcp import IN_PROCESS_URL, FakeContentfulMcp

NOW = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)

CREATED = (
    "Entry created successfully: \n"
    + """<newEntry>
  <metadata>
    <concepts/>
  </metadata>
  <fields>
    <title>
      <en-US>Launch & <b>party</b></en-US>
    </title>
  </fields>
  <sys>
    <id>4RToqNcBfW6MAK0UGU0qWc</id>
    <type>Entry</type>
    <version>1</version>
    <createdAt>2024-03-10T15:31:12.041Z</createdAt>
    <createdBy>
      <sys>
        <type>Link</type>
        <linkType>User</linkType>
        <id>4SejVrWT96dvL9IV4Nb7sQ</id>
      </sys>
    </createdBy>
    <space>
      <sys>
        <type>Link</type>
        <linkType>Space</linkType>
        <id>facgnwwgj5fe</id>
      </sys>
    </space>
    <contentType>
      <sys>
        <type>Link</type>
        <linkType>ContentType</linkType>
        <id>talk</id>
      </sys>
    </contentType>
    <updatedAt>2024-03-10T15:31:12.041Z</updatedAt>
  </sys>
</newEntry>
"""
)

RETRIEVED = (
    "Entry retrieved successfully: \n"
    + """<entry>
  <metadata>
    <tags/>
  </metadata>
  <fields>
    <title>
      <en-US>Launch</en-US>
      <de-DE>Start</de-DE>
    </title>
    <body>
      <en-US>Bring <b>snacks</b> & a <br> friend</en-US>
    </body>
    <views>
      <en-US>42</en-US>
    </views>
    <score>
      <en-US>4.5</en-US>
    </score>
    <featured>
      <en-US>false</en-US>
    </featured>
    <tags>
      <en-US>python</en-US>
    </tags>
    <author>
      <en-US>
        <sys>
          <type>Link</type>
          <linkType>Entry</linkType>
          <id>ge1xHyH3QOWucKWCCAgIG</id>
        </sys>
      </en-US>
    </author>
    <published>
      <en-US>2024-07-01T10:00:00.000+02:00</en-US>
    </published>
    <notes>
      <en-US/>
    </notes>
  </fields>
  <sys>
    <id>5KsDBWseXY6QegucYAoacS</id>
    <type>Entry</type>
    <version>7</version>
    <publishedVersion>5</publishedVersion>
    <publishedCounter>2</publishedCounter>
    <space>
      <sys>
        <type>Link</type>
        <linkType>Space</linkType>
        <id>facgnwwgj5fe</id>
      </sys>
    </space>
    <environment>
      <sys>
        <id>master</id>
        <type>Link</type>
        <linkType>Environment</linkType>
      </sys>
    </environment>
  </sys>
</entry>
"""
)

CONTENT_TYPE = (
    "Content type retrieved successfully: \n"
    + """<contentType>
  <sys>
    <space>
      <sys>
        <type>Link</type>
        <linkType>Space</linkType>
        <id>facgnwwgj5fe</id>
      </sys>
    </space>
    <id>talk</id>
    <type>ContentType</type>
    <version>4</version>
  </sys>
  <displayField>title</displayField>
  <name>Talk</name>
  <description/>
  <fields>
    <id>title</id>
    <name>Title</name>
    <type>Symbol</type>
    <localized>true</localized>
    <required>true</required>
    <validations/>
    <disabled>false</disabled>
    <omitted>false</omitted>
  </fields>
  <fields>
    <id>tags</id>
    <name>Tags</name>
    <type>Array</type>
    <localized>false</localized>
    <required>false</required>
    <disabled>false</disabled>
    <omitted>false</omitted>
    <items>
      <type>Symbol</type>
    </items>
  </fields>
  <fields>
    <id>author</id>
    <name>Author</name>
    <type>Link</type>
    <localized>false</localized>
    <required>false</required>
    <disabled>false</disabled>
    <omitted>false</omitted>
    <linkType>Entry</linkType>
  </fields>
</contentType>
"""
)

TYPES = ContentTypeSpec.from_api(
    {
        "sys": {"id": "talk"},
        "name": "Talk",
        "fields": [
            {"id": "title", "type": "Symbol", "localized": True},
            {"id": "body", "type": "Text"},
            {"id": "views", "type": "Integer"},
            {"id": "score", "type": "Number"},
            {"id": "featured", "type": "Boolean"},
            {"id": "tags", "type": "Array", "items": {"type": "Symbol"}},
            {"id": "author", "type": "Link", "linkType": "Entry"},
            {"id": "published", "type": "Date"},
            {"id": "notes", "type": "Text"},
        ],
    }
)


def test_the_entry_id_is_the_entrys_own_not_a_linked_objects() -> None:
    assert entry_id_of(CREATED) == "4RToqNcBfW6MAK0UGU0qWc"
    assert version_of(CREATED) == 1
    assert published_version_of(CREATED) is None
    assert entry_id_of(RETRIEVED) == "5KsDBWseXY6QegucYAoacS"
    assert (version_of(RETRIEVED), published_version_of(RETRIEVED)) == (7, 5)


def test_fields_are_read_typed_from_the_servers_xml() -> None:
    assert fields_of(RETRIEVED, TYPES) == {
        "title": {"en-US": "Launch", "de-DE": "Start"},
        "body": {"en-US": "Bring <b>snacks</b> & a <br> friend"},  # unescaped markup stays text
        "views": {"en-US": 42},
        "score": {"en-US": 4.5},
        "featured": {"en-US": False},
        "tags": {"en-US": ["python"]},  # one item: one repeated tag, still a list
        "author": {"en-US": {"sys": {"type": "Link", "linkType": "Entry", "id": "ge1xHyH3QOWucKWCCAgIG"}}},
        "published": {"en-US": "2024-07-01T10:00:00.000+02:00"},
        "notes": {"en-US": ""},
    }
    assert fields_of(CREATED, TYPES) == {"title": {"en-US": "Launch & <b>party</b>"}}


def test_a_content_type_is_read_from_the_servers_xml() -> None:
    data = content_type_of(CONTENT_TYPE)
    assert data is not None
    spec = ContentTypeSpec.from_api(data)
    assert (spec.id, spec.name, spec.display_field) == ("talk", "Talk", "title")
    assert list(spec.fields) == ["title", "tags", "author"]
    assert spec.fields["title"].localized is True and spec.fields["tags"].localized is False
    assert spec.fields["tags"].kind == "Array<Symbol>" and spec.fields["author"].link_type == "Entry"


def localized_space() -> tuple[FakeContentful, FakeContentfulMcp]:
    contentful = FakeContentful(cda_rate=None, cma_rate=None)
    env = contentful.add_space("space1", locales=("en-US", "de-DE"))
    contentful.add_content_type(
        env,
        "talk",
        {"title": "Symbol", "views": "Integer", "tags": "Array:Symbol", "abstract": "RichText"},
        localized=("title", "abstract"),
    )
    return contentful, FakeContentfulMcp(contentful)


def destination(mcp: FakeContentfulMcp, field_map: dict[str, str]) -> ContentfulMcpDestination:
    return ContentfulMcpDestination(
        "space1",
        "talk",
        field_map,
        auth=mcp.token,
        mcp_url=IN_PROCESS_URL,
        http=HttpSettings(transport=httpx.ASGITransport(app=mcp.app)),
        rate=FAST,
    )


async def test_an_update_keeps_the_other_locales_and_skips_unchanged_fields() -> None:
    contentful, mcp = localized_space()
    env = contentful.env("space1")
    dest = destination(mcp, {"Name": "title", "Views": "views", "Tags": "tags"})
    record = Record("k1", {"Name": "Launch", "Views": 3, "Tags": ["python"]})
    async with dest.connect() as session:
        entry_id = await session.create(record, NOW)
        contentful.edit_entry(env, entry_id, {"title": {"de-DE": "Start"}})  # a translator's edit
        await session.update(entry_id, Record("k1", {**record.properties, "Name": "Launch party"}), NOW)

    (update,) = mcp.tool_calls("update_entry")
    assert update.arguments["fields"] == {"title": {"en-US": "Launch party", "de-DE": "Start"}}
    assert contentful.entry(env, entry_id).fields["title"] == {"en-US": "Launch party", "de-DE": "Start"}


async def test_an_unchanged_record_sends_no_update() -> None:
    _, mcp = localized_space()
    dest = destination(mcp, {"Name": "title", "Views": "views", "Tags": "tags"})
    record = Record("k1", {"Name": "Launch", "Views": 3, "Tags": ["python"]})
    async with dest.connect() as session:
        entry_id = await session.create(record, NOW)
        assert await session.update(entry_id, record, NOW) is True
    assert mcp.tool_calls("update_entry") == []


async def test_a_rich_text_field_with_translations_is_refused_not_overwritten() -> None:
    contentful, mcp = localized_space()
    env = contentful.env("space1")
    dest = destination(mcp, {"Name": "title", "Abstract": "abstract"})
    async with dest.connect() as session:
        entry_id = await session.create(Record("k1", {"Name": "Launch", "Abstract": "Hello"}), NOW)
        german = {"nodeType": "document", "data": {}, "content": []}  # empty arrays vanish in the XML
        contentful.edit_entry(env, entry_id, {"abstract": {"de-DE": german}})
        with pytest.raises(RecordError, match=r"abstract.*other locales.*de-DE"):
            await session.update(entry_id, Record("k1", {"Name": "Launch", "Abstract": "Hello again"}), NOW)
    assert mcp.tool_calls("update_entry") == []
    assert contentful.entry(env, entry_id).fields["abstract"]["de-DE"] == german

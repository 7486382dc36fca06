"""The five /api/ entities as the generic tests see them (CONTRACT §3): one row per entity
saying what a valid body is, what its lists filter, search and order on, and what a record
reads; and the helpers that create records and linked records through HTTP."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import Identity
from tests.leads_support import CUSTOM_FIELDS, refused

# An id no record has.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

# Every record reads these, whatever its entity; every body may write the first three.
SHARED_WRITABLE = ("assigned_to", "tags", "custom_fields")
SHARED_KEYS = frozenset(
    {*SHARED_WRITABLE, "id", "created_by", "created_at", "updated_at", "number"}
)
# Server-derived fields every entity refuses in a body, with a plausible value for each.
SERVER_DERIVED: dict[str, Any] = {
    "id": UNKNOWN_ID,
    "org": UNKNOWN_ID,
    "created_by": UNKNOWN_ID,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "number": 7,
}


@dataclass(frozen=True)
class Ref:
    """Stands for the id of a record of `entity` that the test creates first (the n-th of
    that entity, when a body links to several); see `linked_records`."""

    entity: str
    n: int = 0


@dataclass(frozen=True)
class Filter:
    """An exact-match list filter: a record carrying `body` (beyond the minimal body) is
    listed for `param=match` and not for `param=miss`; `param=bad` is 400 naming it."""

    param: str
    body: dict[str, Any]
    match: Any
    miss: Any
    bad: str | None = None


@dataclass(frozen=True)
class Entity:
    name: str  # the plural of the URL
    singular: str  # as custom field definitions name it
    required: tuple[str, ...]
    minimal: Callable[[str], dict[str, Any]]  # only the required fields; `tag` keeps it unique
    # Every field of the entity itself (links as Ref); the tests add assigned_to and
    # custom_fields.
    full: Callable[[str], dict[str, Any]]
    # The entity's own writable fields and the value each reads when not given (None for
    # the required ones, which a body always gives).
    defaults: dict[str, Any]
    filters: tuple[Filter, ...]
    # Each field `search` looks in: a value, and a term in another case found in it only.
    search: dict[str, tuple[str, str]]
    # Each orderable field (beyond created_at/updated_at): three values, in ascending order.
    ordering: dict[str, tuple[Any, Any, Any]]
    # Further server-derived fields of this entity, and what they read on a new record.
    read_only: dict[str, Any] = field(default_factory=dict)
    # A text field the search does not look in, when the entity has one.
    unsearched: str | None = None
    # Enum fields and their values in the contract's order.
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Fields that read as a list of ids in no promised order.
    id_lists: tuple[str, ...] = ()
    # Bodies that together set every link (a task has one parent at a time); default: full.
    variants: tuple[dict[str, Any], ...] = ()
    # (field, value) pairs each refused with 400 naming the field.
    invalid: tuple[tuple[str, Any], ...] = ()
    # A field unique in the org among live records, any case: a value, and it in another case.
    unique: tuple[str, str, str] | None = None

    @property
    def url(self) -> str:
        return f"/api/{self.name}/"

    def detail(self, record_id: str) -> str:
        return f"{self.url}{record_id}/"

    @property
    def writable(self) -> frozenset[str]:
        return frozenset({*self.defaults, *SHARED_WRITABLE})

    @property
    def keys(self) -> frozenset[str]:
        """Every key a record reads (the detail adds custom_field_definitions)."""
        return frozenset({*SHARED_KEYS, *self.defaults, *self.read_only})

    def link_bodies(self, tag: str) -> tuple[dict[str, Any], ...]:
        """Bodies that together set every link of the entity."""
        return self.variants or (self.full(tag),)

    def links(self) -> dict[str, str]:
        """Each link field and the entity it links to."""
        found: dict[str, str] = {}
        for body in self.link_bodies("links"):
            for name, value in body.items():
                refs = value if isinstance(value, list) else [value]
                if refs and all(isinstance(ref, Ref) for ref in refs):
                    found[name] = refs[0].entity
        return found


LEADS = Entity(
    name="leads",
    singular="lead",
    required=("title",),
    minimal=lambda tag: {"title": f"Lead {tag}"},
    full=lambda tag: {
        "title": f"Renewal {tag}",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": f"jane.{tag}@acme.com",
        "phone": "+1 555 1234",
        "company_name": "Acme",
        "status": "qualified",
        "source": "website_form",
        "description": "Asked for a quote.",
        "tags": ["hot", "q3"],
    },
    defaults={
        "title": None,
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone": None,
        "company_name": None,
        "status": "new",
        "source": None,
        "description": None,
    },
    read_only={
        "converted_at": None,
        "converted_account": None,
        "converted_contact": None,
        "converted_opportunity": None,
    },
    filters=(
        Filter("status", {"status": "qualified"}, "qualified", "new", bad="won"),
        Filter("source", {"source": "call"}, "call", "email"),
    ),
    search={
        "title": ("Quokka renewal", "QUOKKA"),
        "first_name": ("Wombat", "wOMB"),
        "last_name": ("Numbat", "NUMB"),
        "email": ("platypus@example.com", "Platypus@Example"),
        "company_name": ("Dingo Pty", "dingo p"),
        "phone": ("+61 555 0142", "555 01"),
    },
    unsearched="description",
    ordering={
        "title": ("alpha", "bravo", "charlie"),
        "first_name": ("alice", "bob", "carol"),
        "last_name": ("adams", "baker", "clark"),
        "email": ("a@example.com", "b@example.com", "c@example.com"),
        "company_name": ("acme", "bolt", "crux"),
        "status": ("closed", "new", "qualified"),
    },
    enums={"status": ("new", "assigned", "in_process", "qualified", "recycled", "closed")},
    unique=("email", "jane@acme.com", "Jane@ACME.com"),
    invalid=(
        ("status", "won"),
        ("status", "converted"),
        ("email", "not-an-email"),
        ("source", "carrier_pigeon"),
    ),
)

CONTACTS = Entity(
    name="contacts",
    singular="contact",
    required=("first_name",),
    minimal=lambda tag: {"first_name": f"Ada {tag}"},
    full=lambda tag: {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": f"jane.{tag}@acme.com",
        "phone": "+1 555 1234",
        "title": "Buyer",
        "account": Ref("accounts"),
        "description": "Met at the fair.",
        "tags": ["hot", "q3"],
    },
    defaults={
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone": None,
        "title": None,
        "account": None,
        "description": None,
    },
    filters=(Filter("account", {"account": Ref("accounts")}, Ref("accounts"), UNKNOWN_ID, "x1"),),
    search={
        "first_name": ("Wombat", "wOMB"),
        "last_name": ("Numbat", "NUMB"),
        "email": ("platypus@example.com", "Platypus@Example"),
        "phone": ("+61 555 0142", "555 01"),
        "title": ("Head of Quokkas", "QUOKKA"),
    },
    unsearched="description",
    ordering={
        "first_name": ("alice", "bob", "carol"),
        "last_name": ("adams", "baker", "clark"),
        "email": ("a@example.com", "b@example.com", "c@example.com"),
        "title": ("analyst", "buyer", "chief"),
    },
    invalid=(("email", "not-an-email"), ("account", "not-an-id")),
    unique=("email", "jane@acme.com", "Jane@ACME.com"),
)

ACCOUNTS = Entity(
    name="accounts",
    singular="account",
    required=("name",),
    minimal=lambda tag: {"name": f"Account {tag}"},
    full=lambda tag: {
        "name": f"Acme {tag}",
        "email": "sales@acme.com",
        "phone": "+1 555 1234",
        "website": "https://acme.example.com",
        "industry": "Manufacturing",
        "description": "Makes anvils.",
        "tags": ["hot", "q3"],
    },
    defaults={
        "name": None,
        "email": None,
        "phone": None,
        "website": None,
        "industry": None,
        "description": None,
    },
    filters=(Filter("industry", {"industry": "Aerospace"}, "Aerospace", "Retail"),),
    search={
        "name": ("Quokka Holdings", "QUOKKA"),
        "email": ("platypus@example.com", "Platypus@Example"),
        "phone": ("+61 555 0142", "555 01"),
        "website": ("https://wombat.example.org", "WOMBAT.EX"),
        "industry": ("Numbat farming", "numbat F"),
    },
    unsearched="description",
    ordering={
        "name": ("alpha", "bravo", "charlie"),
        "email": ("a@example.com", "b@example.com", "c@example.com"),
        "industry": ("agriculture", "banking", "construction"),
    },
    invalid=(("email", "not-an-email"),),
    unique=("name", "Acme Corp", "ACME corp"),
)

OPPORTUNITIES = Entity(
    name="opportunities",
    singular="opportunity",
    required=("name",),
    minimal=lambda tag: {"name": f"Deal {tag}"},
    full=lambda tag: {
        "name": f"Anvils {tag}",
        "account": Ref("accounts"),
        "contacts": [Ref("contacts", 0), Ref("contacts", 1)],
        "amount": 24000,
        "currency": "EUR",
        "stage": "proposal",
        "probability": 60,
        "close_date": "2026-12-31",
        "source": "partner",
        "description": "Two hundred anvils.",
        "tags": ["hot", "q3"],
    },
    defaults={
        "name": None,
        "account": None,
        "contacts": [],
        "amount": None,
        "currency": "USD",
        "stage": "prospecting",
        "probability": None,
        "close_date": None,
        "source": None,
        "description": None,
    },
    filters=(
        Filter("stage", {"stage": "proposal"}, "proposal", "prospecting", bad="won"),
        Filter("account", {"account": Ref("accounts")}, Ref("accounts"), UNKNOWN_ID, "x1"),
        Filter("source", {"source": "call"}, "call", "email"),
        Filter("currency", {"currency": "EUR"}, "EUR", "USD"),
    ),
    search={
        "name": ("Quokka expansion", "QUOKKA"),
        "description": ("Wombat burrows", "wOMBAT b"),
    },
    ordering={
        "name": ("alpha", "bravo", "charlie"),
        "amount": (9, 100, 2000.5),  # in numeric order, not the order of their digits
        "stage": ("negotiation", "proposal", "qualification"),
        "probability": (5, 40, 100),
        "close_date": ("2026-01-31", "2026-06-01", "2027-02-01"),
    },
    enums={
        "stage": (
            "prospecting",
            "qualification",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        )
    },
    id_lists=("contacts",),
    invalid=(
        ("stage", "won"),
        ("contacts", [UNKNOWN_ID]),
        ("contacts", ["not-an-id"]),
        ("source", "carrier_pigeon"),
    ),
)

TASKS = Entity(
    name="tasks",
    singular="task",
    required=("title",),
    minimal=lambda tag: {"title": f"Task {tag}"},
    full=lambda tag: {
        "title": f"Call back {tag}",
        "status": "in_progress",
        "priority": "high",
        "due_date": "2026-12-31T17:00:00Z",
        "account": Ref("accounts"),
        "description": "About the quote.",
        "tags": ["hot", "q3"],
    },
    defaults={
        "title": None,
        "status": "new",
        "priority": "medium",
        "due_date": None,
        "lead": None,
        "contact": None,
        "account": None,
        "opportunity": None,
        "description": None,
    },
    filters=(
        Filter("status", {"status": "completed"}, "completed", "new", bad="done"),
        Filter("priority", {"priority": "high"}, "high", "low", bad="urgent"),
        Filter("lead", {"lead": Ref("leads")}, Ref("leads"), UNKNOWN_ID, "x1"),
        Filter("contact", {"contact": Ref("contacts")}, Ref("contacts"), UNKNOWN_ID, "x1"),
        Filter("account", {"account": Ref("accounts")}, Ref("accounts"), UNKNOWN_ID, "x1"),
        Filter(
            "opportunity",
            {"opportunity": Ref("opportunities")},
            Ref("opportunities"),
            UNKNOWN_ID,
            "x1",
        ),
    ),
    search={
        "title": ("Quokka call", "QUOKKA"),
        "description": ("Wombat burrows", "wOMBAT b"),
    },
    ordering={
        "title": ("alpha", "bravo", "charlie"),
        "status": ("completed", "in_progress", "new"),
        "priority": ("high", "low", "medium"),
        "due_date": ("2026-01-31T09:00:00Z", "2026-06-01T09:00:00Z", "2027-02-01T09:00:00Z"),
    },
    enums={
        "status": ("new", "in_progress", "completed"),
        "priority": ("low", "medium", "high"),
    },
    variants=(
        {"title": "About a lead", "lead": Ref("leads")},
        {"title": "About a contact", "contact": Ref("contacts")},
        {"title": "About an account", "account": Ref("accounts")},
        {"title": "About an opportunity", "opportunity": Ref("opportunities")},
    ),
    invalid=(
        ("status", "done"),
        ("priority", "urgent"),
        ("due_date", "tomorrow"),
        ("lead", "not-an-id"),
    ),
)

ENTITIES = (LEADS, CONTACTS, ACCOUNTS, OPPORTUNITIES, TASKS)
BY_NAME = {entity.name: entity for entity in ENTITIES}


def new_tag() -> str:
    return uuid.uuid4().hex[:8]


# --- Linked records -----------------------------------------------------------------------


def refs_in(value: Any) -> set[Ref]:
    if isinstance(value, Ref):
        return {value}
    if isinstance(value, dict):
        return set().union(*(refs_in(item) for item in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(refs_in(item) for item in value))
    return set()


async def linked_records(api: httpx.AsyncClient, who: Identity, *values: Any) -> dict[Ref, str]:
    """Creates a minimal record for each Ref found in `values`: its id by Ref."""
    ids: dict[Ref, str] = {}
    for ref in sorted(refs_in(list(values)), key=lambda ref: (ref.entity, ref.n)):
        ids[ref] = (await create(api, who, BY_NAME[ref.entity]))["id"]
    return ids


def resolve(value: Any, ids: dict[Ref, str]) -> Any:
    """`value` with each Ref replaced by its record's id."""
    if isinstance(value, Ref):
        return ids[value]
    if isinstance(value, dict):
        return {key: resolve(item, ids) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item, ids) for item in value]
    return value


# --- Records through HTTP -----------------------------------------------------------------


async def create(
    api: httpx.AsyncClient, who: Identity, entity: Entity, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        entity.url, json={**entity.minimal(new_tag()), **fields}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listing(
    api: httpx.AsyncClient, who: Identity, entity: Entity, params: Any = None
) -> dict[str, Any]:
    response = await api.get(entity.url, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed_ids(
    api: httpx.AsyncClient, who: Identity, entity: Entity, params: Any = None
) -> list[str]:
    """The ids of the first page (up to 100) of a list."""
    merged = {"page_size": "100", **dict(params or {})}
    return [record["id"] for record in (await listing(api, who, entity, merged))["results"]]


async def read(
    api: httpx.AsyncClient, who: Identity, entity: Entity, record_id: str
) -> dict[str, Any]:
    response = await api.get(entity.detail(record_id), headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def define_custom_fields(
    api: httpx.AsyncClient, admin: Identity, entity: Entity
) -> list[dict[str, Any]]:
    """Two custom fields of the entity: `tier` (text, filterable) and `score` (number)."""
    created = []
    for body in (
        {"key": "tier", "label": "Tier", "type": "text", "filterable": True},
        {"key": "score", "label": "Score", "type": "number"},
    ):
        response = await api.post(
            CUSTOM_FIELDS, json={"entity": entity.singular, **body}, headers=admin.headers
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


def profile_ref(
    member: Identity, name: str | None = None, is_active: bool = True
) -> dict[str, Any]:
    """How a record shows a member as its `assigned_to` or `created_by` (the fixtures'
    members have no name)."""
    return {"id": member.profile_id, "email": member.email, "name": name, "is_active": is_active}


def as_read(entity: Entity, body: dict[str, Any], profiles: dict[str, str]) -> dict[str, Any]:
    """What a record reads for the fields of a body it was written with: `assigned_to` as
    the active member {id, email, name, is_active} (`profiles` maps ids to emails; the
    members have no name), lists of ids in any order."""
    expected = {}
    for name, value in body.items():
        if name == "assigned_to" and value is not None:
            value = {"id": value, "email": profiles[value], "name": None, "is_active": True}
        elif name in entity.id_lists:
            value = sorted(value)
        expected[name] = value
    return expected


def reads(entity: Entity, record: dict[str, Any], names: Any) -> dict[str, Any]:
    """The record's values for these fields (lists of ids sorted)."""
    return {
        name: sorted(record[name]) if name in entity.id_lists else record[name] for name in names
    }


def refused_naming(response: httpx.Response, name: str) -> None:
    """A 400 naming the field, or items of it (`tags.0`), as a nested field is named."""
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert errors and all(key == name or key.startswith(f"{name}.") for key in errors), errors


async def assert_invisible_to_other_org(
    api: httpx.AsyncClient, other: Identity, entity: Entity, record_id: str
) -> None:
    """Another org's admin neither lists nor reads the record."""
    assert record_id not in await listed_ids(api, other, entity)
    refused(await api.get(entity.detail(record_id), headers=other.headers), 404)

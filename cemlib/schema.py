"""The canonical source tables: which columns each must have, which it may have, and their types.

The contract is DESIGN.md "Canonical source tables" (plus ``line_id`` in the lines tables).
Extra columns a user's export carries are kept as text; missing optional columns are allowed.
The event tables (orders, receipts, web events, tickets) may carry ``contact_id``: the id of the
``crm_contacts`` record the event belongs to (a foreign key, as a clinic's visits name their
patient), which identity links on directly (:data:`CONTACT_REF`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: column kinds understood by the staging step
TEXT, TIMESTAMP, DATE, NUMBER, BOOL = "text", "timestamp", "date", "number", "bool"
KINDS = (TEXT, TIMESTAMP, DATE, NUMBER, BOOL)


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its id column, required and optional columns and their kinds."""

    name: str
    id_column: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    #: the column dating a row (for date ranges and the "after as_of" count), if any
    date_column: str | None = None
    #: identifier columns whose coverage the collection report shows
    identifiers: tuple[str, ...] = ()
    #: columns holding phones / emails (normalized columns are added in staging)
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    #: a table that must be present when this one is (lines need their headers)
    parent: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Required then optional columns of the table."""
        return self.required + self.optional

    def kind(self, column: str) -> str:
        """The type ``column`` is read as (text when the contract does not type it)."""
        return self.kinds.get(column, TEXT)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            name="crm_contacts",
            id_column="contact_id",
            required=("contact_id",),
            optional=(
                "full_name",
                "first_name",
                "last_name",
                "middle_name",
                "phone",
                "email",
                # a CRM card's second phone / e-mail ("Доп. телефон"): identifiers for
                # matching profiles only, never an address offers are sent to
                "phone2",
                "email2",
                "birth_date",
                "gender",
                "city",
                "loyalty_card",
                "registered_at",
                "consent_email",
                "consent_sms",
                # when the contract / account closed (a CRM export's "Дата расторжения"): a
                # record closed on or before as_of is a customer who left (cemlib.marts.closed)
                "closed_at",
            ),
            kinds={
                "birth_date": DATE,
                "registered_at": TIMESTAMP,
                "closed_at": TIMESTAMP,
                "consent_email": BOOL,
                "consent_sms": BOOL,
            },
            date_column="registered_at",
            identifiers=("phone", "email", "loyalty_card", "full_name", "last_name", "birth_date"),
            phones=("phone", "phone2"),
            emails=("email", "email2"),
        ),
        TableSpec(
            name="online_orders",
            id_column="order_id",
            required=("order_id", "ordered_at"),
            # first_name: the buyer's first name a marketplace order shows beside a masked
            # phone (identity's partial key, cemlib.identity.masked)
            optional=(
                "email",
                "phone",
                "device_id",
                "delivery_address",
                "contact_id",
                "first_name",
                "is_return",
            ),  # fmt: skip
            kinds={"ordered_at": TIMESTAMP, "is_return": BOOL},
            date_column="ordered_at",
            identifiers=("email", "phone", "device_id", "delivery_address"),
            phones=("phone",),
            emails=("email",),
        ),
        TableSpec(
            name="order_lines",
            id_column="line_id",
            required=("order_id", "sku", "quantity", "price"),
            optional=("line_id", "is_return", "returned"),
            kinds={"quantity": NUMBER, "price": NUMBER, "is_return": BOOL, "returned": BOOL},
            parent="online_orders",
        ),
        TableSpec(
            name="pos_receipts",
            id_column="receipt_id",
            required=("receipt_id", "purchased_at"),
            optional=("store_id", "loyalty_card", "phone", "contact_id", "is_return"),
            kinds={"purchased_at": TIMESTAMP, "is_return": BOOL},
            date_column="purchased_at",
            identifiers=("phone", "loyalty_card"),
            phones=("phone",),
        ),
        TableSpec(
            name="receipt_lines",
            id_column="line_id",
            required=("receipt_id", "sku", "quantity", "price"),
            optional=("line_id", "is_return", "returned"),
            kinds={"quantity": NUMBER, "price": NUMBER, "is_return": BOOL, "returned": BOOL},
            parent="pos_receipts",
        ),
        TableSpec(
            name="web_events",
            id_column="event_id",
            required=("event_id", "ts", "event_type"),
            optional=("device_id", "cookie_id", "email", "sku", "category", "contact_id"),
            kinds={"ts": TIMESTAMP},
            date_column="ts",
            identifiers=("email", "device_id", "cookie_id"),
            emails=("email",),
        ),
        TableSpec(
            name="support_tickets",
            id_column="ticket_id",
            required=("ticket_id", "created_at"),
            # the customer's name a service desk records (``ФИО клиента``): identity's chain and
            # household guards tell two people sharing a phone apart by it (trial 12 F6)
            optional=(
                "phone",
                "email",
                "channel",
                "topic",
                "csat",
                "contact_id",
                "full_name",
                "first_name",
                "last_name",
                "middle_name",
            ),
            kinds={"created_at": TIMESTAMP, "csat": NUMBER},
            date_column="created_at",
            identifiers=("phone", "email", "full_name", "last_name"),
            phones=("phone",),
            emails=("email",),
        ),
        TableSpec(
            name="products",
            id_column="sku",
            required=("sku",),
            optional=("name", "category", "price", "margin", "audience", "group", "size"),
            kinds={"price": NUMBER, "margin": NUMBER},
        ),
    )
}

#: the column of an event table naming the ``crm_contacts`` record the event belongs to
CONTACT_REF = "contact_id"
#: the tables that may carry :data:`CONTACT_REF` (a foreign key to ``crm_contacts``)
CONTACT_REF_TABLES: tuple[str, ...] = (
    "online_orders",
    "pos_receipts",
    "web_events",
    "support_tickets",
)

#: the lines tables: a line records goods sold, or with ``is_return`` goods brought back (a
#: return: a negative quantity or amount, or the flag; a return receipt or order flags its
#: header), or with ``returned`` a sale that was later returned (a marketplace report's status)
LINE_TABLES: tuple[str, ...] = ("order_lines", "receipt_lines")

#: columns of person names in ``crm_contacts`` (normalized into ``*_norm`` and ``*_lat``)
NAME_PARTS: tuple[str, ...] = ("last_name", "first_name", "middle_name")


def table_spec(name: str) -> TableSpec:
    """The spec of canonical table ``name``; ``KeyError`` naming the known tables otherwise."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; canonical tables: {', '.join(TABLES)}") from None

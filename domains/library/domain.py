"""The tools of the library domain: plain functions over the tables in ``data.json``.

How to read (and copy) this file:

* Each tool is a function decorated with ``@tool(kind=...)``. Its first parameter is ``db``,
  a mapping table name -> table of records (``db["members"]["M1001"]`` is a dict); the other
  parameters are what the LLM passes. Their JSON schema comes from the type hints, their
  descriptions from the ``Args:`` section of the docstring, the tool's description from the
  docstring's first paragraph. Return plain JSON data (dicts, lists, strings, numbers).
* A call the API refuses (unknown id, nothing available, ...) raises ``ToolExecutionError``
  with the message a real API would give. The call then changes nothing.
* **Copy-on-write**: records reached by *iterating* a table (``.values()``, ``.items()``)
  are shared by every environment; only read them. Before changing a record, look it up by
  key (``db["members"][member_id]``), which gives this environment its own copy.
* Like tau2-bench's APIs, the tools do not enforce the *policy* (loan limits, fines,
  identity checks, ...): the assistant must. ``rules.py`` checks the policy over the calls.
  The tools only refuse what the system itself could not do.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from apigen_mt.domains.simple import Db, ToolExecutionError, tool

#: The simulated "today" (the policy states it too). Fixed, so replays are deterministic.
TODAY = "2024-06-14"
LOAN_DAYS = 21
RENEWAL_DAYS = 14
DAILY_FINE = 0.25
MAX_OVERDUE_FINE = 10.00
# Policy limits, enforced by rules.py (not by the tools):
MAX_ACTIVE_LOANS = 3
MAX_RENEWALS = 2
BORROWING_FINE_LIMIT = 10.00
GENRES = (
    "children", "classic", "cooking", "design", "fantasy", "fiction", "history", "memoir",
    "mystery", "psychology", "science", "science fiction", "thriller",
)


# -- helpers (not tools: no decorator) ------------------------------------------------------------
def _member(db: Db, member_id: str) -> dict[str, Any]:
    member = db["members"].get(member_id)  # keyed lookup: this environment's own copy
    if member is None:
        raise ToolExecutionError(f"Member {member_id} not found")
    return member


def _book(db: Db, book_id: str) -> dict[str, Any]:
    book = db["books"].get(book_id)
    if book is None:
        raise ToolExecutionError(f"Book {book_id} not found")
    return book


def _loan(db: Db, loan_id: str) -> dict[str, Any]:
    loan = db["loans"].get(loan_id)
    if loan is None:
        raise ToolExecutionError(f"Loan {loan_id} not found")
    return loan


def _next_id(table: Any, prefix: str) -> str:
    """The next id of a table (``L0026`` after ``L0025``): deterministic, so replays agree."""
    numbers = [int(key[len(prefix):]) for key in table if key.startswith(prefix) and key[len(prefix):].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:04d}"


def _days_late(due_date: str, on: str = TODAY) -> int:
    return max(0, (date.fromisoformat(on) - date.fromisoformat(due_date)).days)


def _available_copies(book: dict[str, Any]) -> list[str]:
    return sorted(copy_id for copy_id, copy in book["copies"].items() if copy["status"] == "available")


# -- read tools -----------------------------------------------------------------------------------
@tool(kind="read")
def find_member_by_email(db: Db, email: str) -> str:
    """Find a library member's id by their email address.

    Args:
        email: The member's email address, such as 'alice.moreno@example.com'.
    """
    wanted = email.strip().lower()
    for member_id, member in db["members"].items():  # iterating: read only
        if member["email"].lower() == wanted:
            return member_id
    raise ToolExecutionError("Member not found")


@tool(kind="read")
def get_member_details(db: Db, member_id: str) -> dict[str, Any]:
    """Get a member's account: contact details, status, payment methods, loans and fines.

    Args:
        member_id: The member id, such as 'M1001'.
    """
    member = _member(db, member_id)
    loans = [db["loans"][loan_id] for loan_id in member["loans"]]
    fines = [db["fines"][fine_id] for fine_id in member["fines"]]
    unpaid = [fine for fine in fines if fine["status"] == "unpaid"]
    return {
        **member,
        "active_loans": [
            {
                "loan_id": loan["loan_id"],
                "book_id": loan["book_id"],
                "title": db["books"][loan["book_id"]]["title"],
                "due_date": loan["due_date"],
                "renewals": loan["renewals"],
                "overdue": _days_late(loan["due_date"]) > 0,
            }
            for loan in loans
            if loan["status"] == "active"
        ],
        "unpaid_fines": [
            {"fine_id": f["fine_id"], "amount": f["amount"], "reason": f["reason"], "loan_id": f["loan_id"]}
            for f in unpaid
        ],
        "unpaid_fines_total": round(sum(f["amount"] for f in unpaid), 2),
    }


@tool(kind="read")
def search_books(
    db: Db, title: str = "", author: str = "", genre: str = "", available_only: bool = False
) -> list[dict[str, Any]]:
    """Search the catalogue by title, author and/or genre (case-insensitive, partial matches).

    Args:
        title: Part of the title, such as 'earthsea'.
        author: Part of the author's name, such as 'Le Guin'.
        genre: One of: children, classic, cooking, design, fantasy, fiction, history, memoir,
            mystery, psychology, science, science fiction, thriller.
        available_only: Only list books with a copy available to borrow now.
    """
    if not (title.strip() or author.strip() or genre.strip()):
        raise ToolExecutionError("Give a title, an author or a genre to search for")
    results = []
    for book_id, book in db["books"].items():  # iterating: read only
        if title.strip().lower() not in book["title"].lower():
            continue
        if author.strip().lower() not in book["author"].lower():
            continue
        if genre.strip() and genre.strip().lower() != book["genre"]:
            continue
        available = len(_available_copies(book))
        if available_only and not available:
            continue
        results.append(
            {
                "book_id": book_id,
                "title": book["title"],
                "author": book["author"],
                "year": book["year"],
                "genre": book["genre"],
                "available_copies": available,
            }
        )
    return results[:10]


@tool(kind="read")
def get_book_details(db: Db, book_id: str) -> dict[str, Any]:
    """Get a book's details and the status and branch of each of its copies.

    Args:
        book_id: The book id, such as 'B007'.
    """
    book = _book(db, book_id)
    return {**book, "available_copies": len(_available_copies(book))}


# -- write tools ----------------------------------------------------------------------------------
@tool(kind="write")
def borrow_book(db: Db, member_id: str, book_id: str) -> dict[str, Any]:
    """Lend an available copy of a book to a member for 21 days.

    Args:
        member_id: The member id, such as 'M1001'.
        book_id: The book id, such as 'B007'.

    Returns:
        The new loan.
    """
    member = _member(db, member_id)
    if member["status"] != "active":
        raise ToolExecutionError(f"Member {member_id} is {member['status']} and cannot borrow")
    book = _book(db, book_id)
    available = _available_copies(book)
    if not available:
        raise ToolExecutionError(f"No copy of '{book['title']}' is available")
    copy_id = available[0]
    loan_id = _next_id(db["loans"], "L")
    loan = {
        "loan_id": loan_id,
        "member_id": member_id,
        "book_id": book_id,
        "copy_id": copy_id,
        "borrowed_on": TODAY,
        "due_date": (date.fromisoformat(TODAY) + timedelta(days=LOAN_DAYS)).isoformat(),
        "renewals": 0,
        "status": "active",
        "returned_on": None,
    }
    db["loans"][loan_id] = loan
    book["copies"][copy_id]["status"] = "on_loan"  # `book` came from a keyed lookup: ours to change
    member["loans"].append(loan_id)
    return loan


@tool(kind="write")
def return_book(db: Db, loan_id: str) -> dict[str, Any]:
    """Check a borrowed copy back in. A late return creates an overdue fine of $0.25 per day
    late, at most $10.00 per loan.

    Args:
        loan_id: The loan id, such as 'L0001'.

    Returns:
        The closed loan and the fine it created (or null).
    """
    loan = _loan(db, loan_id)
    if loan["status"] != "active":
        raise ToolExecutionError(f"Loan {loan_id} was already returned on {loan['returned_on']}")
    loan["status"] = "returned"
    loan["returned_on"] = TODAY
    _book(db, loan["book_id"])["copies"][loan["copy_id"]]["status"] = "available"
    fine = None
    late = _days_late(loan["due_date"])
    if late:
        fine_id = _next_id(db["fines"], "F")
        fine = {
            "fine_id": fine_id,
            "member_id": loan["member_id"],
            "loan_id": loan_id,
            "amount": round(min(late * DAILY_FINE, MAX_OVERDUE_FINE), 2),
            "reason": "overdue",
            "status": "unpaid",
            "issued_on": TODAY,
            "paid_on": None,
            "payment_method_id": None,
        }
        db["fines"][fine_id] = fine
        _member(db, loan["member_id"])["fines"].append(fine_id)
    return {"loan": loan, "fine": fine}


@tool(kind="write")
def renew_loan(db: Db, loan_id: str) -> dict[str, Any]:
    """Extend an active loan's due date by 14 days.

    Args:
        loan_id: The loan id, such as 'L0001'.

    Returns:
        The loan with its new due date.
    """
    loan = _loan(db, loan_id)
    if loan["status"] != "active":
        raise ToolExecutionError(f"Loan {loan_id} was returned on {loan['returned_on']} and cannot be renewed")
    loan["due_date"] = (date.fromisoformat(loan["due_date"]) + timedelta(days=RENEWAL_DAYS)).isoformat()
    loan["renewals"] += 1
    return loan


@tool(kind="write")
def pay_fine(db: Db, fine_id: str, payment_method_id: str) -> dict[str, Any]:
    """Pay a fine in full with a payment method on file. Library credit must cover the whole
    amount; a credit card is charged.

    Args:
        fine_id: The fine id, such as 'F0001'.
        payment_method_id: The payment method id, such as 'card_4417' or 'credit_1004'.

    Returns:
        The paid fine.
    """
    fine = db["fines"].get(fine_id)
    if fine is None:
        raise ToolExecutionError(f"Fine {fine_id} not found")
    if fine["status"] == "paid":
        raise ToolExecutionError(f"Fine {fine_id} was already paid on {fine['paid_on']}")
    owner_id = next(
        (m_id for m_id, m in db["members"].items() if payment_method_id in m["payment_methods"]), None
    )  # iterating only to find the owner: read only
    if owner_id is None:
        raise ToolExecutionError(f"Payment method {payment_method_id} not found")
    owner = db["members"][owner_id]  # keyed lookup before changing the balance
    method = owner["payment_methods"][payment_method_id]
    if method["type"] == "library_credit":
        if method["balance"] < fine["amount"]:
            raise ToolExecutionError(
                f"Insufficient library credit: balance ${method['balance']:.2f}, fine ${fine['amount']:.2f}"
            )
        method["balance"] = round(method["balance"] - fine["amount"], 2)
    fine["status"] = "paid"
    fine["paid_on"] = TODAY
    fine["payment_method_id"] = payment_method_id
    return fine


# -- other ----------------------------------------------------------------------------------------
@tool(kind="other")
def transfer_to_librarian(db: Db, summary: str) -> str:
    """Transfer the member to a human librarian, with a summary of their request. Only when
    the request cannot be handled with the other tools.

    Args:
        summary: A short summary of the member's request and what was done so far.
    """
    return "Transfer successful"

"""A tiny fake shop domain, small enough to reason about by hand.

Shared by the API graph and sampler tests: two users, four orders, lookups by email, user
and order, and two writes whose order states exclude each other (cancel / refund).
"""

from __future__ import annotations

import copy

from apigen_mt.domains.base import (
    Domain,
    Environment,
    PolicyRule,
    RecordChange,
    ToolExecutionError,
    ToolKind,
    ToolSpec,
    UnknownToolError,
)

USERS = {
    "ann_lee_101": {"user_id": "ann_lee_101", "email": "ann@example.com", "orders": ["#O1001", "#O1002"]},
    "bob_kim_202": {"user_id": "bob_kim_202", "email": "bob@example.com", "orders": ["#O2001", "#O2002"]},
}
ORDERS = {
    "#O1001": {"order_id": "#O1001", "user_id": "ann_lee_101", "status": "pending", "item_ids": ["I-100"]},
    "#O1002": {"order_id": "#O1002", "user_id": "ann_lee_101", "status": "delivered", "item_ids": ["I-200"]},
    "#O2001": {"order_id": "#O2001", "user_id": "bob_kim_202", "status": "pending", "item_ids": ["I-300"]},
    "#O2002": {"order_id": "#O2002", "user_id": "bob_kim_202", "status": "delivered", "item_ids": ["I-400"]},
}
POLICY = """# Shop policy

Authenticate the user by email before anything else.

## Cancel order

Only pending orders can be cancelled, for reason 'no longer needed'.

## Refund order

Only delivered orders can be refunded, to the original payment method.
"""


def _schema(**props):
    return {
        "type": "object",
        "properties": {k: {"type": "string", "description": v} for k, v in props.items()},
        "required": list(props),
    }


TOOLS = [
    ToolSpec(
        "find_user_by_email",
        "Find the user id of a customer by email.",
        _schema(email="The email."),
        ToolKind.READ,
    ),
    ToolSpec(
        "get_user",
        "Get a user and their orders.",
        _schema(user_id="The user id, such as 'ann_lee_101'."),
        ToolKind.READ,
    ),
    ToolSpec(
        "get_order", "Get an order.", _schema(order_id="The order id, such as '#O1001'."), ToolKind.READ
    ),
    ToolSpec(
        "cancel_order",
        "Cancel a pending order.",
        _schema(order_id="The order id.", reason="Why."),
        ToolKind.WRITE,
    ),
    ToolSpec("refund_order", "Refund a delivered order.", _schema(order_id="The order id."), ToolKind.WRITE),
    ToolSpec("note", "Write a private note.", _schema(text="The note."), ToolKind.OTHER),
]


class ShopEnv(Environment):
    def __init__(self, domain, tables):
        self.domain, self.tables = domain, tables

    def execute(self, name, arguments):
        users, orders = self.tables["users"], self.tables["orders"]
        if name == "find_user_by_email":
            for user in users.values():
                if user["email"] == arguments["email"]:
                    return user["user_id"]
            raise ToolExecutionError("User not found")
        if name == "get_user":
            if arguments["user_id"] not in users:
                raise ToolExecutionError("User not found")
            return copy.deepcopy(users[arguments["user_id"]])
        if name in ("get_order", "cancel_order", "refund_order"):
            order = orders.get(arguments["order_id"])
            if order is None:
                raise ToolExecutionError("Order not found")
            if name == "cancel_order":
                if order["status"] != "pending":
                    raise ToolExecutionError("Order is not pending")
                order["status"] = "cancelled"
            if name == "refund_order":
                if order["status"] != "delivered":
                    raise ToolExecutionError("Order is not delivered")
                order["status"] = "refunded"
            return copy.deepcopy(order)
        if name == "note":
            return "noted"
        raise UnknownToolError(f"Tool '{name}' not found.")

    def changed_records(self):
        for table, rows in self.tables.items():
            for key, value in rows.items():
                before = self.domain.pristine[table].get(key)
                if before != value:
                    yield RecordChange(table, key, before, value)

    def record(self, table, key):
        return copy.deepcopy(self.tables[table].get(key))

    def fork(self):
        return ShopEnv(self.domain, copy.deepcopy(self.tables))


def _bp(id_, actions):
    email, *_ = (a["email"] for n, a in actions if "email" in a)
    order = actions[-1][1]["order_id"]
    wish = "cancel it, no longer needed" if actions[-1][0] == "cancel_order" else "refund it"
    return {
        "id": id_,
        "domain": "shop",
        "instruction": f"You are {email}. About your order {order}: {wish}.",
        "outputs": [],
        "actions": [{"name": n, "arguments": a} for n, a in actions],
        "source": {"benchmark": "shop", "task_id": id_, "split": "train"},
    }


EXAMPLES = [
    _bp(
        "1",
        [
            ("find_user_by_email", {"email": "ann@example.com"}),
            ("get_user", {"user_id": "ann_lee_101"}),
            ("get_order", {"order_id": "#O1001"}),
            ("cancel_order", {"order_id": "#O1001", "reason": "no longer needed"}),
        ],
    ),
    _bp(
        "2",
        [
            ("find_user_by_email", {"email": "bob@example.com"}),
            ("get_user", {"user_id": "bob_kim_202"}),
            ("get_order", {"order_id": "#O2001"}),
            ("cancel_order", {"order_id": "#O2001", "reason": "no longer needed"}),
        ],
    ),
    _bp(
        "3",
        [
            ("find_user_by_email", {"email": "ann@example.com"}),
            ("get_user", {"user_id": "ann_lee_101"}),
            ("get_order", {"order_id": "#O1002"}),
            ("refund_order", {"order_id": "#O1002"}),
        ],
    ),
    _bp(
        "4",
        [
            ("find_user_by_email", {"email": "bob@example.com"}),
            ("get_user", {"user_id": "bob_kim_202"}),
            ("get_order", {"order_id": "#O2002"}),
            ("refund_order", {"order_id": "#O2002"}),
        ],
    ),
]


class ShopDomain(Domain):
    name = "shop"

    def __init__(self, examples=EXAMPLES):
        self.pristine = {"users": USERS, "orders": ORDERS}
        self._examples = examples

    @property
    def policy(self):
        return POLICY

    @property
    def tools(self):
        return TOOLS

    @property
    def policy_rules(self):
        none = lambda trace: []
        return [
            PolicyRule(
                "authenticate_first",
                "Find the user by email first.",
                ("get_user", "cancel_order", "refund_order"),
                none,
            ),
            PolicyRule(
                "cancel_only_pending", "Only pending orders can be cancelled.", ("cancel_order",), none
            ),
            PolicyRule(
                "refund_only_delivered", "Only delivered orders can be refunded.", ("refund_order",), none
            ),
        ]

    def new_env(self):
        return ShopEnv(self, copy.deepcopy(self.pristine))

    def user_ids(self):
        return sorted(USERS)

    def user_context(self, user_id):
        user = USERS[user_id]
        return {"user": user, "orders": [ORDERS[o] for o in user["orders"]]}

    def example_blueprints(self):
        return list(self._examples)

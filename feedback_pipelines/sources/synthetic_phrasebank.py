"""Phrasebank for the synthetic generator: topics, intents, templates and slot fillers.

Each topic is a distinct semantic domain. A topic holds several intents (one kind of question);
an intent holds a few phrasings of the request, answers that fit it, a flawed answer, the
correction a user would type for the flawed answer, and complaints about it. Templates carry
``{slot}`` placeholders filled once per session, so a conversation, its answer and its
correction talk about the same order number, table or medicine. Texts are written to read like
what people type into a support assistant, so clustering, redaction and tuning sets are
exercised on something close to real traffic rather than on a few fixed strings.

Slot values are strings or dicts; a dict is a group of values that belong together (a phrase and
its correct translation, an oven temperature in both scales) and is merged into the session's
slots whole. ``DERIVE`` computes slots that depend on others (gram conversions).

PII snippets contain exactly one of ``{email} {phone} {card} {sk} {ghp} {akia} {ip}``;
look-alike snippets contain ``{digits}`` (a digit string that fails the Luhn check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Topic = dict[str, Any]


def _fmt_qty(x: float) -> str:
    """Formats a quantity without a trailing ``.0`` (``1.5`` stays, ``3.0`` becomes ``3``)."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _derive_recipe(s: dict[str, str]) -> None:
    """Fills the arithmetic slots of the recipe topic from the sampled quantity and ingredient."""
    q = float(s["qty"])
    s["grams"] = str(round(q * int(s["gpc"])))
    s["wrong_grams"] = str(round(q * 240))  # the classic mistake: a cup weighed like water
    s["tbsp"] = _fmt_qty(q * 16)
    s["oil"] = _fmt_qty(q * 0.75)


DERIVE: dict[str, Callable[[dict[str, str]], None]] = {"recipe_conversion": _derive_recipe}


def _intent(
    requests: list[str],
    responses: list[str],
    bad: list[str],
    corrections: list[str],
    complaints: list[str],
) -> dict[str, list[str]]:
    return {
        "requests": requests,
        "responses": responses,
        "bad": bad,
        "corrections": corrections,
        "complaints": complaints,
    }


TOPICS: list[Topic] = [
    {
        "name": "billing_invoice",
        "label": "Invoice and billing questions",
        "rate": 0.12,
        "weight": 1.1,
        "roles": {"customer": 0.55, "admin": 0.3, "agent": 0.15},
        "slots": {
            "plan": ["Pro", "Team", "Business", "Starter", "Enterprise"],
            "month": ["October", "November", "September", "August", "July"],
            "amount": ["$49.00", "$120.00", "$19.99", "$348.00", "€89.00", "$1,240.50"],
            "amount2": ["$24.50", "$60.00", "$9.99", "$29.00", "$4.17"],
            "invoice": ["INV-2026-0412", "INV-2026-1187", "INV-2026-0931", "INV-2026-2210"],
            "seats": ["3", "5", "12", "25", "40"],
        },
        "intents": [
            _intent(
                [
                    "Why was I charged {amount} on my {month} invoice? I'm on the {plan} plan.",
                    "can you explain the line items on invoice {invoice}? there's a charge of "
                    "{amount2} I don't recognize",
                    "we have {seats} users on {plan}, why is the invoice higher than the pricing "
                    "page says",
                ],
                [
                    "The {amount} on your {month} invoice is the {plan} plan's base fee plus "
                    "{seats} seats, prorated from the day they were added. Each line is listed "
                    "under Billing → Invoices → {invoice}.",
                    "The {amount2} line is usage above the {plan} plan's included quota, billed in "
                    "arrears. Open {invoice} and expand 'Usage' to see it per day.",
                ],
                [
                    "The {amount} is probably a mistake on your bank's side. Please contact your "
                    "bank."
                ],
                [
                    "The {amount} is the {plan} base fee plus {seats} prorated seats, and the "
                    "{amount2} line is usage over the quota; the breakdown is on {invoice} under "
                    "'Usage'. Nothing was billed twice."
                ],
                [
                    "It didn't explain the {amount2} line at all.",
                    "Telling me to call my bank is useless, the charge is on your invoice.",
                ],
            ),
            _intent(
                [
                    "How do I download a PDF copy of my {month} invoice for our accounting team?",
                    "Our finance team needs invoice {invoice} reissued with the full company name. "
                    "Can you do that?",
                    "How do I change the billing email and add our VAT number to future invoices?",
                ],
                [
                    "You can download any invoice as a PDF from Settings → Billing → Invoice "
                    "history: open {invoice} and choose 'Download PDF'. Billing admins can also "
                    "set "
                    "an accounting email that receives a copy of every invoice.",
                    "Edit the company name and VAT ID under Settings → Billing → Billing details, "
                    "then open {invoice} and click 'Regenerate PDF'; future invoices use the new "
                    "details automatically.",
                ],
                [
                    "Invoices can't be downloaded or changed; they are only sent by email when a "
                    "payment is made."
                ],
                [
                    "You can do it yourself: Settings → Billing → Invoice history → {invoice} → "
                    "Download PDF, or Regenerate PDF after updating the billing details."
                ],
                [
                    "Wrong menu path, there is no 'Invoice history' under Settings for me.",
                    "I asked about invoice {invoice}, not about billing in general.",
                ],
            ),
            _intent(
                [
                    "I was charged twice for {month} ({amount} each). How do I get one of them "
                    "refunded?",
                    "two identical charges of {amount} this month, is that a bug?",
                ],
                [
                    "A duplicate charge usually means the first payment attempt was reported as "
                    "failed but later settled. Open Billing → Payments, select the duplicate "
                    "{amount} charge and choose 'Request refund'; it returns to the original card "
                    "within 5–10 business days."
                ],
                ["All charges are final and refunds are not possible under any circumstances."],
                [
                    "Duplicate charges are refundable: go to Billing → Payments, select the second "
                    "{amount} charge and click 'Request refund'. It takes 5–10 business days to "
                    "reach the card."
                ],
                [
                    "That's not true, I've had refunds for duplicate charges before.",
                    "No refund option? You literally charged me twice.",
                ],
            ),
            _intent(
                [
                    "What happens to my invoice if I add {seats} seats in the middle of the "
                    "billing "
                    "cycle?",
                    "How is proration calculated when we add {seats} seats on the {plan} plan?",
                ],
                [
                    "When you add {seats} seats mid-cycle, you pay a prorated amount for the "
                    "remaining days now and the full price from the next invoice on. Nothing is "
                    "charged retroactively."
                ],
                [
                    "Adding seats mid-cycle charges the full monthly price for every seat "
                    "immediately, plus again on the next invoice."
                ],
                [
                    "Seats added mid-cycle are prorated: you pay only for the remaining days this "
                    "cycle, then the normal price from the next invoice."
                ],
                [
                    "Too vague. I need the actual proration math for {seats} seats.",
                    "We'd be charged twice for the same seats? That's not how your pricing page "
                    "describes it.",
                ],
            ),
            _intent(
                [
                    "We downgraded from {plan} last month but still got billed {amount}. Is a "
                    "prorated refund possible?",
                    "why am I still paying for {plan} after downgrading?",
                ],
                [
                    "Downgrades take effect at the end of the current period, so the {amount} "
                    "covers the {plan} plan until then. Prorated refunds for downgrades aren't "
                    "automatic, but support can issue one on request."
                ],
                [
                    "Downgrades are applied immediately, so the {amount} must be an error by your "
                    "bank."
                ],
                [
                    "Downgrades apply at the end of the period, but support can refund the unused "
                    "part of the {plan} plan if you ask within 30 days."
                ],
                ["The downgrade date it gave is wrong."],
            ),
            _intent(
                [
                    "Is sales tax included in the {amount} on the {plan} plan or added on top?",
                    "Why is there a tax line on {invoice}? we're a VAT-registered business",
                ],
                [
                    "Tax is added on top of the {plan} price based on your billing address and "
                    "appears as a separate line on {invoice}. If you're VAT-registered, add your "
                    "VAT ID under Billing details and it will be reverse-charged."
                ],
                ["All prices include tax, so there is never a tax line on an invoice."],
                [
                    "Tax is added on top of the list price; add your VAT ID under Billing details "
                    "so {invoice} is reissued with reverse charge."
                ],
                ["It still doesn't say whether tax is included in {amount}."],
            ),
        ],
        "followups": [
            "And when will the refund show up on my statement?",
            "Can you break down the {amount2} charge specifically?",
            "ok, and where do I find the invoice history page?",
            "Does that apply to annual billing as well?",
            "What if the {plan} plan was bought through the app store?",
        ],
        "negative_comments": [
            "The answer contradicts what your pricing page says about the {plan} plan.",
            "Generic billing answer, it never looked at {invoice}.",
            "This is not how our {plan} contract works.",
        ],
        "positive_comments": [
            "Perfect, found the PDF right where it said.",
            "Clear explanation of the proration, thanks.",
            "Refund requested, that was easy.",
        ],
        "reasons": {
            "factual_error": 3,
            "incomplete": 3,
            "irrelevant": 2,
            "other": 1,
            "formatting": 1,
        },
        "pii": [
            "My card {card} was charged both times.",
            "The card on file is {card}.",
            "Please send the corrected invoice to {email}.",
            "call me at {phone} if you need more details",
        ],
        "lookalikes": [
            "Order reference {digits} is on the receipt.",
            "The transaction id was {digits}.",
        ],
    },
    {
        "name": "password_reset",
        "label": "Password reset and account access",
        "rate": 0.08,
        "weight": 1.1,
        "roles": {"customer": 0.6, "agent": 0.2, "admin": 0.2},
        "slots": {
            "app": [
                "the mobile app",
                "the web dashboard",
                "the desktop client",
                "the admin console",
            ],
            "err": [
                "'Reset link expired'",
                "'Invalid token'",
                "'Too many attempts, try again later'",
                "'Account locked'",
            ],
            "mfa": ["authenticator app", "SMS code", "security key", "backup codes"],
            "minutes": ["15", "30", "60"],
        },
        "intents": [
            _intent(
                [
                    "I forgot my password and the reset email never arrives. What can I do?",
                    "the reset link says {err} every time I click it",
                    "Is there a way to reset my password without email access? I changed jobs.",
                ],
                [
                    "Reset emails can take a few minutes; check spam and make sure you used the "
                    "address on the account. Links are valid for {minutes} minutes and only the "
                    "most recent one works, so request a new one and use it right away.",
                    "{err} means the link was already used or a newer one was requested. Request a "
                    "new link, close other tabs, and open only the latest email.",
                ],
                [
                    "Just create a new account with a different email; old accounts can't be "
                    "recovered.",
                    "Reset links never expire, so the problem must be your email provider.",
                ],
                [
                    "Use 'Forgot password' to get a new link; it's valid for {minutes} minutes and "
                    "only the latest link works. Old links show {err}. Without email access, "
                    "support can verify you and change the address."
                ],
                [
                    "I don't have access to that email anymore, that's the whole problem.",
                    "Creating a new account loses all my data, terrible advice.",
                    "Still getting {err} after trying three times.",
                ],
            ),
            _intent(
                [
                    "How do I reset my password if I no longer have access to my {mfa}?",
                    "lost my phone with the {mfa}, how do I get back in?",
                ],
                [
                    "If you lost your {mfa}, use one of your backup codes on the sign-in page. "
                    "Without backup codes, contact support to verify your identity with a recent "
                    "invoice number or the account creation date."
                ],
                [
                    "Password resets are only possible by calling our phone line during business "
                    "hours."
                ],
                [
                    "Without your {mfa}, sign in with a backup code or ask support for identity "
                    "verification in the chat — no phone call and no new account needed."
                ],
                [
                    "It ignored that I said I lost my {mfa}.",
                    "Nobody answers the phone line, so this doesn't help.",
                ],
            ),
            _intent(
                [
                    "I'm locked out of {app} after too many tries, how long do I have to wait?",
                    "account says {err}, when can I try again?",
                ],
                [
                    "After 5 failed attempts the account is locked for {minutes} minutes. You can "
                    "wait it out or use 'Forgot password' to unlock it immediately."
                ],
                ["Locked accounts are permanently disabled for security reasons."],
                [
                    "The lockout lasts {minutes} minutes after 5 failed tries; 'Forgot password' "
                    "unlocks it immediately."
                ],
                ["It is not permanent, I got back in after an hour last time."],
            ),
            _intent(
                [
                    "As an admin, how do I force a password reset for a user on my team?",
                    "my colleague left and we need to reset the password on the shared account, "
                    "who can do that?",
                ],
                [
                    "Admins can force a reset from Admin → Users → select the user → 'Reset "
                    "password'. The user gets an email and all their sessions are signed out."
                ],
                [
                    "Only the account owner can reset their own password; admins have no way to do "
                    "it."
                ],
                [
                    "Admins can trigger a reset for any team member under Admin → Users → Reset "
                    "password; the user's sessions are signed out."
                ],
                [
                    "The admin menu it describes doesn't exist in our plan.",
                    "Of course admins can reset passwords, I did it last month.",
                ],
            ),
            _intent(
                [
                    "I reset my password but {app} still asks for the old one.",
                    "Can I change my password from {app} or only on the website?",
                ],
                [
                    "{app} may keep an old session: sign out everywhere (Settings → Security → "
                    "Sign out of all sessions) and sign in with the new password. You can change "
                    "it from Settings → Security in {app} too."
                ],
                ["Clear your browser cache and the old password will work again."],
                [
                    "{app} caches credentials: sign out of all sessions under Settings → Security "
                    "and log in again with the new password."
                ],
                ["The old password obviously doesn't work anymore, that was my point."],
            ),
            _intent(
                [
                    "Why does the reset page say my new password doesn't meet the requirements? It "
                    "has 14 characters.",
                    "what are the password rules? it keeps rejecting mine",
                ],
                [
                    "Passwords need 12 or more characters, can't contain your name or email, and "
                    "can't match any of your last 5 passwords."
                ],
                ["Passwords must be exactly 8 characters with one symbol."],
                [
                    "The rule is 12+ characters, no name or email inside, and none of the last 5 "
                    "passwords."
                ],
                ["The password rules it listed are different from what the page shows."],
            ),
        ],
        "followups": [
            "I checked spam too, nothing there.",
            "How long is the reset link valid?",
            "what if I lost my {mfa} as well?",
            "It still says {err}.",
            "Can support verify me another way?",
        ],
        "negative_comments": [
            "It took me in circles back to the same reset page.",
            "Generic answer, didn't read my question.",
        ],
        "positive_comments": [
            "Worked, the new link came through.",
            "Thanks, the backup code did it.",
            "Admin reset worked for my teammate.",
        ],
        "reasons": {"factual_error": 3, "incomplete": 2, "irrelevant": 2, "refusal": 1, "other": 1},
        "pii": [
            "my account email is {email}",
            "the reset code was sent to {phone} but never arrived",
            "my login is {email}, please check it",
        ],
    },
    {
        "name": "sql_help",
        "label": "SQL query help",
        "rate": 0.15,
        "weight": 1.5,
        "roles": {"analyst": 0.6, "admin": 0.2, "agent": 0.2},
        "slots": {
            "db": ["PostgreSQL", "MySQL", "SQLite", "BigQuery", "Snowflake"],
            "table": ["orders", "customers", "events", "invoices", "sessions", "payments"],
            "col": ["created_at", "customer_id", "status", "amount", "region", "updated_at"],
            "table2": ["users", "products", "refunds", "accounts"],
            "n": ["5", "10", "20", "100"],
        },
        "intents": [
            _intent(
                [
                    "How do I get the top {n} {table} by amount for each region in {db}?",
                    "Can you convert this to {db} syntax: SELECT TOP {n} * FROM {table} ORDER BY "
                    "{col} DESC",
                ],
                [
                    "TOP is SQL Server syntax; in {db} write SELECT * FROM {table} ORDER BY {col} "
                    "DESC LIMIT {n}; for the top {n} per region use ROW_NUMBER() OVER (PARTITION "
                    "BY region ORDER BY amount DESC) and keep rn <= {n}."
                ],
                [
                    "Use SELECT TOP {n} * FROM {table} ORDER BY {col} DESC; this works the same in "
                    "{db}."
                ],
                [
                    "For {db}: SELECT * FROM {table} ORDER BY {col} DESC LIMIT {n}; — TOP only "
                    "exists in SQL Server. Per region: SELECT * FROM (SELECT *, ROW_NUMBER() OVER "
                    "(PARTITION BY region ORDER BY amount DESC) rn FROM {table}) t WHERE rn <= {n};"
                ],
                [
                    "That query doesn't even run in {db}.",
                    "It ignored that I'm on {db}, the syntax is wrong.",
                ],
            ),
            _intent(
                [
                    "getting 'column must appear in the GROUP BY clause' on a simple query over "
                    "{table}, help",
                    "what's the difference between WHERE and HAVING? my GROUP BY query on {table} "
                    "errors out",
                ],
                [
                    "Every selected column must be aggregated or listed in GROUP BY: SELECT "
                    "region, "
                    "SUM(amount) FROM {table} GROUP BY region; filter rows with WHERE before "
                    "grouping and groups with HAVING after it."
                ],
                ["SELECT region, amount, {col} FROM {table} GROUP BY region;"],
                [
                    "Every non-aggregated column must be in GROUP BY: SELECT region, SUM(amount) "
                    "FROM {table} GROUP BY region HAVING COUNT(*) > {n};"
                ],
                [
                    "It explains WHERE vs HAVING but never fixes my query.",
                    "Same GROUP BY error with the suggested query.",
                ],
            ),
            _intent(
                [
                    "How do I remove duplicate rows from {table} but keep the newest one by {col}?",
                    "Why does my LEFT JOIN between {table} and {table2} return more rows than "
                    "{table} has?",
                ],
                [
                    "Keep one row per key with a window function: DELETE FROM {table} WHERE id IN "
                    "(SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER "
                    "BY {col} DESC) rn FROM {table}) x WHERE rn > 1); extra rows after a join mean "
                    "{table2} has several matches per key."
                ],
                ["Just add DISTINCT to the query; duplicates go away and performance improves."],
                [
                    "DISTINCT hides the symptom; aggregate {table2} per key before joining, and "
                    "delete true duplicates with ROW_NUMBER() OVER (PARTITION BY customer_id ORDER "
                    "BY {col} DESC) > 1."
                ],
                ["DISTINCT doesn't fix a bad join, this is wrong."],
            ),
            _intent(
                [
                    "My query on {table} is super slow, it has a WHERE on {col} and 40M rows. What "
                    "index should I add?",
                    "query over {table} takes 2 minutes in {db}, how do I speed it up?",
                ],
                [
                    "Add a B-tree index on {table}({col}); if you also sort on created_at, a "
                    "composite index ({col}, created_at) covers both. Check with EXPLAIN that it's "
                    "used."
                ],
                ["Indexes don't help on large tables; partition {table} by {col} instead."],
                [
                    "CREATE INDEX ON {table} ({col}); then confirm with EXPLAIN ANALYZE that the "
                    "40M-row scan became an index scan."
                ],
                [
                    "The index advice is outdated.",
                    "Still too slow, it didn't address the full table scan.",
                ],
            ),
            _intent(
                [
                    "write a query that counts {table} per day for the last 30 days in {db}, "
                    "including days with zero",
                    "I need a running total of amount ordered by {col} in {table}. Window "
                    "function?",
                ],
                [
                    "Generate the calendar and left join it: generate_series(current_date - 29, "
                    "current_date, interval '1 day') AS d LEFT JOIN {table} o ON "
                    "o.created_at::date "
                    "= d, then GROUP BY d and COUNT(o.id) so empty days show 0. A running total is "
                    "SUM(amount) OVER (ORDER BY {col})."
                ],
                [
                    "SELECT created_at::date, COUNT(*) FROM {table} GROUP BY 1; days without rows "
                    "will show as zero automatically."
                ],
                [
                    "Days without rows don't appear by themselves: LEFT JOIN a generated calendar "
                    "(generate_series) to {table} and COUNT(o.id) per day."
                ],
                ["I asked for days with zero counts and they're still missing."],
            ),
            _intent(
                [
                    "How do I find {table2} that have no matching rows in {table}?",
                    "list {table2} without any {table} in {db}",
                ],
                [
                    "Use NOT EXISTS: SELECT * FROM {table2} u WHERE NOT EXISTS (SELECT 1 FROM "
                    "{table} o WHERE o.customer_id = u.id);"
                ],
                [
                    "Use a RIGHT JOIN from {table} to {table2} and filter WHERE {table2}.id IS "
                    "NULL "
                    "to find rows with a match."
                ],
                [
                    "Anti-join: SELECT u.* FROM {table2} u LEFT JOIN {table} o ON o.customer_id = "
                    "u.id WHERE o.customer_id IS NULL;"
                ],
                ["That returns the rows WITH a match, the opposite of what I asked."],
            ),
        ],
        "followups": [
            'That returns an error: syntax error at or near "TOP".',
            "Can you do it without a subquery?",
            "How would this look in {db} specifically?",
            "It works but takes 2 minutes, can it be faster?",
            "What if {col} can be NULL?",
        ],
        "negative_comments": [
            "The window function partitions by the wrong column.",
            "The query has a syntax error.",
            "Doesn't handle NULLs in {col}.",
        ],
        "regression_comments": [
            "It used SELECT TOP in {db}, that's SQL Server syntax.",
            "The query selects {col} without grouping by it and fails.",
            "Same GROUP BY error as before, the fix doesn't work.",
            "The previous version got this right, now it mixes up SQL dialects.",
            "The generated SQL references a column that doesn't exist in {table}.",
            'syntax error at or near "TOP" — again.',
        ],
        "positive_comments": [
            "Window function version works, thanks!",
            "Index brought it down from 40s to 200ms.",
            "NOT EXISTS did exactly what I needed.",
        ],
        "reasons": {"factual_error": 5, "incomplete": 2, "formatting": 1, "irrelevant": 1},
        "pii": [
            "the db host is {ip}, port 5432, in case it matters",
            "the connection string uses the login {email}",
            "our read replica at {ip} shows the same thing",
        ],
        "lookalikes": ["the failing row has id {digits}"],
    },
    {
        "name": "travel_refund",
        "label": "Travel refund policy",
        "rate": 0.28,
        "weight": 1.0,
        "roles": {"customer": 0.8, "agent": 0.2},
        "slots": {
            "airline": ["SkyBridge Air", "NordJet", "Coastal Airways", "Pacifica"],
            "city": ["Lisbon", "Chicago", "Osaka", "Berlin", "Nairobi", "Toronto"],
            "hours": ["3", "5", "8", "26"],
            "fare": ["Basic Economy", "Economy Flex", "Premium", "non-refundable"],
            "booking": ["ABC123", "K7Q2LM", "ZX9P4T", "R2D2C3"],
        },
        "intents": [
            _intent(
                [
                    "My flight to {city} with {airline} was cancelled. Am I entitled to a full "
                    "refund or just a voucher?",
                    "The airline offered a voucher instead of a refund for booking {booking}. Do I "
                    "have to accept it?",
                ],
                [
                    "If the airline cancels, you're entitled to a full refund to the original "
                    "payment method, even on {fare} fares; a voucher is optional. Request it in "
                    "writing quoting booking {booking}."
                ],
                [
                    "{fare} tickets are never refundable, even if the airline cancels the flight.",
                    "You must accept the voucher; refunds are at the airline's discretion.",
                ],
                [
                    "When the airline cancels, you get a full cash refund whatever the fare type, "
                    "and you can decline the voucher. Quote booking {booking} in the written "
                    "request."
                ],
                [
                    "Wrong, the airline cancelled so I'm owed cash, not a voucher.",
                    "It said {fare} is never refundable, that's false when they cancel.",
                ],
            ),
            _intent(
                [
                    "The flight was delayed {hours} hours, can I get compensation?",
                    "{airline} flight from {city} landed {hours} hours late, what am I owed?",
                ],
                [
                    "For EU departures or EU carriers, an arrival delay over 3 hours can mean "
                    "€250–600 compensation under EC 261, unless caused by extraordinary "
                    "circumstances like severe weather."
                ],
                ["Delays are never compensated; airlines aren't responsible for their schedules."],
                [
                    "Under EC 261, a {hours}-hour arrival delay on an EU flight entitles you to "
                    "€250–600 unless it was caused by extraordinary circumstances."
                ],
                ["It didn't mention EC 261 at all and my flight left from {city}."],
            ),
            _intent(
                [
                    "I booked a {fare} ticket, booking {booking}. Can I still get money back if I "
                    "cancel 2 days before?",
                    "what's the refund policy if I cancel within 24 hours of booking?",
                ],
                [
                    "US rules give a full refund if you cancel within 24 hours of booking, as long "
                    "as you booked at least 7 days before departure. After that, {fare} fares only "
                    "refund taxes and fees."
                ],
                ["You can always cancel for a full refund up to 2 hours before departure."],
                [
                    "Within 24 hours of booking (and 7+ days before departure) you get everything "
                    "back; later, a {fare} ticket only refunds taxes and airport fees."
                ],
                [
                    "The 24-hour rule it quoted is wrong.",
                    "Generic answer, I gave my booking {booking} and it ignored it.",
                ],
            ),
            _intent(
                [
                    "How long does a refund to my credit card usually take after a cancelled "
                    "flight?",
                    "still no refund for booking {booking}, it's been 6 weeks",
                ],
                [
                    "Most carriers refund card payments within 7 business days, though it can take "
                    "one or two statement cycles to appear. Past that, file a complaint with the "
                    "regulator."
                ],
                ["Refunds take up to 12 months and there's nothing you can do to speed it up."],
                [
                    "Card refunds for cancelled flights are due within 7 business days in the US; "
                    "file a DOT complaint quoting {booking} if it takes longer."
                ],
                ["Doesn't explain how to actually file the claim."],
            ),
            _intent(
                [
                    "I missed my connection in {city} because the first leg was late. Who pays for "
                    "the new ticket?",
                    "hotel in {city} cancelled my reservation the day before, what are my rights?",
                ],
                [
                    "If both legs were on one ticket, {airline} must rebook you at no cost after a "
                    "missed connection caused by their delay, with meals or a hotel if needed. For "
                    "a hotel cancellation, you're owed a refund and often the price difference."
                ],
                ["Missed connections are always the passenger's responsibility."],
                [
                    "On a single ticket {airline} must rebook the missed connection in {city} for "
                    "free and provide meals or a hotel if needed."
                ],
                ["I asked about the hotel, it only talked about flights."],
            ),
            _intent(
                [
                    "Does travel insurance cover a refund if I get sick and can't fly?",
                    "They charged a change fee on my {fare} ticket even though they changed the "
                    "schedule. Is that allowed?",
                ],
                [
                    "Travel insurance usually covers illness with a doctor's note; file with the "
                    "insurer, not the airline. When the airline changes the schedule, change fees "
                    "are waived and you can ask for a refund instead."
                ],
                ["Insurance never covers illness and change fees always apply."],
                [
                    "Illness is covered by most policies with a doctor's note, and a "
                    "carrier-initiated schedule change waives the change fee on {fare} tickets."
                ],
                ["Too long, I just want to know if I get my money back."],
            ),
        ],
        "followups": [
            "What if the flight was within the EU?",
            "The airline says it was weather, so no compensation. Is that true?",
            "How do I file the claim?",
            "It's been 6 weeks and nothing.",
            "And the hotel night I lost in {city}?",
        ],
        "negative_comments": [
            "Copy-paste policy text, didn't help.",
            "It contradicts what {airline} told me on the phone.",
        ],
        "positive_comments": [
            "Got my refund after citing the rule, thanks.",
            "Clear, I declined the voucher.",
            "Helpful, claim filed.",
        ],
        "reasons": {"factual_error": 4, "incomplete": 3, "irrelevant": 2, "too_long": 1, "tone": 1},
        "pii": [
            "you can reach me at {phone} about the booking",
            "the confirmation went to {email}",
            "the refund should go back to card {card}",
        ],
        "lookalikes": ["ticket number {digits}"],
    },
    {
        "name": "recipe_conversion",
        "label": "Recipe unit conversion",
        "rate": 0.06,
        "weight": 0.9,
        "roles": {"customer": 0.9, "agent": 0.1},
        "slots": {
            "qty": ["2", "1.5", "3", "0.75", "4", "2.5"],
            "ing": [
                {"ingredient": "all-purpose flour", "gpc": "125"},
                {"ingredient": "granulated sugar", "gpc": "200"},
                {"ingredient": "butter", "gpc": "227"},
                {"ingredient": "rolled oats", "gpc": "90"},
                {"ingredient": "honey", "gpc": "340"},
                {"ingredient": "cocoa powder", "gpc": "85"},
                {"ingredient": "brown sugar", "gpc": "220"},
            ],
            "oven": [
                {"oven_f": "350°F", "oven_c": "175°C", "oven_wrong": "318°C", "gas": "4"},
                {"oven_f": "375°F", "oven_c": "190°C", "oven_wrong": "343°C", "gas": "5"},
                {"oven_f": "400°F", "oven_c": "200°C", "oven_wrong": "368°C", "gas": "6"},
                {"oven_f": "425°F", "oven_c": "220°C", "oven_wrong": "393°C", "gas": "7"},
            ],
        },
        "intents": [
            _intent(
                [
                    "How many grams is {qty} cups of {ingredient}?",
                    "convert {qty} cups {ingredient} to grams pls, my scale only does grams",
                    "is a US cup the same as a metric cup? the recipe uses {qty} cups of "
                    "{ingredient}",
                ],
                [
                    "{qty} cups of {ingredient} is about {grams} g (1 cup ≈ {gpc} g). Spoon it "
                    "into "
                    "the cup and level it off for the most accurate result.",
                    "A US cup is 240 ml and a metric cup 250 ml, but weight depends on the "
                    "ingredient: {qty} cups of {ingredient} is about {grams} g.",
                ],
                ["{qty} cups of {ingredient} is {wrong_grams} g."],
                [
                    "{qty} cups of {ingredient} ≈ {grams} g, since one cup weighs about {gpc} g — "
                    "not 240 g, that's water."
                ],
                [
                    "The gram number is way off, I weighed it.",
                    "The conversion for {ingredient} is wrong, it's not the same density as water.",
                ],
            ),
            _intent(
                [
                    "Recipe says bake at {oven_f}, what is that in Celsius for a fan oven?",
                    "My British recipe says gas mark {gas}. What temperature is that?",
                ],
                [
                    "{oven_f} (gas mark {gas}) is about {oven_c} in a conventional oven; for a fan "
                    "oven reduce it by about 20°C."
                ],
                ["{oven_f} equals {oven_wrong}."],
                ["{oven_f} is {oven_c} (gas mark {gas}); for a fan oven use about 20°C less."],
                [
                    "{oven_f} is not {oven_wrong}, my cake burned.",
                    "I asked about fan ovens specifically.",
                ],
            ),
            _intent(
                [
                    "Can I swap butter for oil in a cake? The recipe has {qty} cups of butter.",
                    "replace {qty} cups butter with vegetable oil, how much?",
                ],
                [
                    "Use about 3/4 as much oil as butter: {qty} cups of butter becomes roughly "
                    "{oil} cups of oil. Expect a slightly denser crumb."
                ],
                ["You can replace butter with oil one-to-one; no adjustment needed."],
                [
                    "Replace butter with about 3/4 the amount of oil: {oil} cups for {qty} cups of "
                    "butter."
                ],
                ["The one-to-one oil swap made my cake greasy."],
            ),
            _intent(
                [
                    "How do I scale a recipe for 4 people up to 10 people without ruining the "
                    "seasoning?",
                    "I want to halve a recipe that uses 3 eggs. How do I do half of 3 eggs?",
                ],
                [
                    "Multiply the ingredients by 2.5, but add salt and spices gradually to taste "
                    "and keep the baking time similar. To halve 3 eggs, beat them and use half by "
                    "weight (about 75 g)."
                ],
                ["Just multiply every ingredient, including the salt and the baking time, by 2.5."],
                [
                    "Scale the ingredients by 2.5 but season to taste and keep the baking time "
                    "similar — check doneness with a thermometer instead of multiplying the time."
                ],
                ["Multiplying the bake time by 2.5 is nonsense."],
            ),
            _intent(
                ["How many tablespoons are in {qty} cups?", "{qty} cups to tablespoons?"],
                ["There are 16 tablespoons in a cup, so {qty} cups is {tbsp} tablespoons."],
                ["There are 12 tablespoons in a cup."],
                ["{qty} cups is {tbsp} tablespoons (16 tablespoons per cup)."],
                ["A cup is 16 tablespoons, not 12."],
            ),
            _intent(
                [
                    "How much dry yeast replaces 25 g of fresh yeast?",
                    "recipe wants fresh yeast, I only have instant. how much?",
                ],
                [
                    "Use one third of the fresh amount: about 8 g of active dry yeast, or 7 g of "
                    "instant yeast."
                ],
                ["Use the same weight of dry yeast as fresh yeast."],
                [
                    "Dry yeast is about a third of the fresh weight: 25 g fresh ≈ 8 g active dry ≈ "
                    "7 g instant."
                ],
                ["Same weight of dry yeast? My dough exploded."],
            ),
        ],
        "followups": [
            "And for a fan oven?",
            "What about in ounces?",
            "Does altitude change that?",
            "And the baking time?",
        ],
        "negative_comments": [
            "It didn't say whether it's a US or a metric cup.",
            "Too long for a simple conversion.",
        ],
        "positive_comments": [
            "Exactly what I needed, the cake turned out great.",
            "Quick and correct, thanks.",
            "Perfect conversion.",
        ],
        "reasons": {"factual_error": 4, "formatting": 2, "too_long": 2, "incomplete": 1},
        "pii": ["I'm sending this to my mom at {email}"],
    },
    {
        "name": "python_debugging",
        "label": "Python debugging",
        "rate": 0.22,
        "weight": 1.2,
        "roles": {"analyst": 0.4, "agent": 0.3, "admin": 0.3},
        "slots": {
            "err": [
                "KeyError: 'user_id'",
                "TypeError: 'NoneType' object is not subscriptable",
                "ModuleNotFoundError: No module named 'yaml'",
                "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9",
                "ValueError: cannot convert float NaN to integer",
            ],
            "lib": ["pandas", "requests", "httpx", "numpy", "FastAPI", "SQLAlchemy"],
            "version": ["3.9", "3.10", "3.11", "3.12"],
            "func": ["load_orders", "parse_config", "fetch_page", "normalize_rows", "build_report"],
            "var": ["df", "payload", "items", "config", "rows"],
        },
        "intents": [
            _intent(
                [
                    "I'm getting {err} in {func}(), can you help me figure out why?",
                    "python {version}: my script crashes with {err}. It worked yesterday",
                    "pytest passes locally but fails in CI with {err}. What could differ?",
                ],
                [
                    "{err} in {func}() means the data doesn't hold what the code expects. Print "
                    "{var} right before the failing line, check the input that changed since "
                    "yesterday, and handle the missing or bad value explicitly. In CI, also "
                    "compare "
                    "dependency versions."
                ],
                ["Wrap the whole function in try/except Exception: pass and the error goes away."],
                [
                    "Don't swallow the exception: log the record that triggers {err} in {func}(), "
                    "validate {var} at the boundary, and pin dependency versions so CI matches "
                    "local."
                ],
                [
                    "try/except pass just hides the bug, terrible advice.",
                    "Didn't look at my traceback at all.",
                ],
            ),
            _intent(
                [
                    "Why does {var}.append() fail after upgrading pandas?",
                    "AttributeError: 'DataFrame' object has no attribute 'append' in {func}()",
                ],
                [
                    "DataFrame.append was removed in pandas 2.0; collect the new rows in a list "
                    "and call pd.concat once: {var} = pd.concat([{var}, new_rows], "
                    "ignore_index=True)."
                ],
                [
                    "Use {var}.append(new_rows) — it's the recommended way in current pandas "
                    "versions."
                ],
                [
                    "pandas 2.x removed DataFrame.append; use pd.concat([{var}, new_rows], "
                    "ignore_index=True)."
                ],
                ["{var}.append doesn't exist anymore in pandas 2, did you even check?"],
            ),
            _intent(
                [
                    "my {lib} code hangs forever when I call {func}(), no error at all",
                    "What's the right way to retry {lib} calls that time out?",
                ],
                [
                    "A hang without an error usually means a blocking call without a timeout. "
                    "Pass timeout=10 to the {lib} call, retry with exponential backoff (tenacity), "
                    "and run with python -X faulthandler to dump the stack when it stalls."
                ],
                ["This is a bug in Python {version}; downgrade to Python 2.7."],
                [
                    "Add a timeout to the {lib} call (timeout=10) and retry with backoff; the "
                    "missing timeout is why it hangs."
                ],
                ["Python 2.7?? That's been dead for years."],
            ),
            _intent(
                [
                    "{func}() returns None instead of the list, I don't understand why",
                    "RecursionError: maximum recursion depth exceeded in {func}()",
                ],
                [
                    "{func}() returns None because one branch falls through without a return "
                    "statement; add return {var} at the end. For deep recursion, rewrite the "
                    "function with a loop and an explicit stack."
                ],
                ["Set sys.setrecursionlimit(10**9) to fix it."],
                [
                    "{func}() has a path without a return; add return {var} after the loop. "
                    "Raising the recursion limit just crashes later — iterate instead."
                ],
                [
                    "The fix gives {err} now.",
                    "Raising the recursion limit crashed the interpreter.",
                ],
            ),
            _intent(
                [
                    "How do I read a CSV with accented characters without getting a "
                    "UnicodeDecodeError?",
                    "pd.read_csv fails with 'utf-8' codec can't decode byte 0xe9",
                ],
                [
                    "The file isn't UTF-8: open it with the right encoding, "
                    "pd.read_csv(path, encoding='latin-1') or 'cp1252', or better, ask for UTF-8 "
                    "exports."
                ],
                ["Pass errors='ignore' and the accents will be handled automatically."],
                [
                    "Read it as cp1252/latin-1 (pd.read_csv(path, encoding='cp1252')); "
                    "errors='ignore' silently drops the accented letters."
                ],
                ["errors='ignore' deleted all the accents in the names."],
            ),
        ],
        "followups": [
            "Here's the traceback, it points to line 42 in {func}.",
            "I already tried reinstalling {lib}.",
            "Can you show the fixed code?",
            "Does this work on Python {version}?",
        ],
        "negative_comments": [
            "The code block is missing the import.",
            "It explained the error but not how to fix it.",
            "Way too much text, just show the corrected line.",
        ],
        "positive_comments": [
            "pd.concat fixed it, thanks!",
            "The timeout was exactly the problem.",
            "faulthandler trick is gold.",
        ],
        "reasons": {"factual_error": 4, "incomplete": 3, "formatting": 2, "too_long": 1},
        "pii": [
            'my config has api_key="{sk}" in it, is that the problem?',
            "AWS_ACCESS_KEY_ID={akia} is set in the environment",
            "git clone https://{ghp}@github.com/acme/etl.git fails in CI",
            "the service runs on {ip}:8080",
            'client = OpenAI(api_key="{sk}")',
        ],
    },
    {
        "name": "contract_summary",
        "label": "Contract summarization",
        "rate": 0.18,
        "weight": 0.9,
        "roles": {"analyst": 0.4, "agent": 0.3, "admin": 0.3},
        "slots": {
            "contract": [
                "master services agreement",
                "NDA",
                "commercial lease",
                "SaaS subscription agreement",
                "supplier agreement",
            ],
            "clause": [
                "termination",
                "liability cap",
                "auto-renewal",
                "indemnification",
                "payment terms",
            ],
            "days_n": ["30", "60", "90"],
            "party": ["Brightline Ltd", "Okafor & Partners", "Meridian Health", "Tallis Robotics"],
            "pages": ["12", "38", "54", "9"],
        },
        "intents": [
            _intent(
                [
                    "Summarize the key obligations in this {pages}-page {contract} with {party}.",
                    "Give me a one-paragraph summary of the {contract} for our CFO.",
                ],
                [
                    "Key points of the {contract} with {party}: {days_n}-day termination notice, "
                    "liability capped at 12 months of fees, auto-renewal for 1-year terms, and "
                    "payment due net 30. Indemnification is mutual but excludes data breaches."
                ],
                [
                    "In summary, the parties agree to work together under the terms described in "
                    "the agreement."
                ],
                [
                    "Summary: {days_n}-day notice, net-30 payment with a 1.5% monthly late fee, "
                    "mutual indemnity excluding data breaches, liability capped at 12 months of "
                    "fees, 1-year auto-renewal."
                ],
                ["This summary is so generic it's useless.", "Way too long for a CFO summary."],
            ),
            _intent(
                [
                    "What does the {clause} clause in our {contract} actually mean in plain "
                    "English?",
                    "what happens if we terminate the {contract} with {party} early?",
                ],
                [
                    "The {clause} clause means either side can end the agreement with {days_n} "
                    "days' written notice; early termination for convenience costs the remaining "
                    "fees of the current term."
                ],
                ["There is no {clause} clause in this agreement."],
                [
                    "The {clause} clause is in section 11: {days_n} days' written notice, and "
                    "early "
                    "termination costs the remaining fees for the current term."
                ],
                ["It says there's no {clause} clause but it's right there in section 11."],
            ),
            _intent(
                [
                    "Can you list every deadline and notice period in this {contract}?",
                    "Does this {contract} auto-renew, and how many days' notice do we need to "
                    "cancel?",
                ],
                [
                    "Deadlines: renewal notice {days_n} days before the term ends, invoices "
                    "payable "
                    "within 30 days, a 15-day cure period for breaches, and data returned within "
                    "30 "
                    "days after termination. It auto-renews for 12-month terms."
                ],
                ["The notice period is 7 days."],
                [
                    "It auto-renews for 12 months unless cancelled {days_n} days before the term "
                    "ends; invoices are due in 30 days and breaches have a 15-day cure period."
                ],
                ["The notice period is {days_n} days, not 7.", "Missed the late fee entirely."],
            ),
            _intent(
                [
                    "Is there anything unusual or risky in the {clause} section? We sign with "
                    "{party} tomorrow.",
                    "Explain who is liable if the supplier's data breach affects our customers "
                    "under this {contract}.",
                ],
                [
                    "Risky for you: the liability section caps {party}'s liability at the fees "
                    "paid "
                    "in the last 3 months and excludes indirect damages, including data loss, so a "
                    "breach would mostly be on you."
                ],
                ["The {contract} is standard and has no notable risks; you can sign it as is."],
                [
                    "Liability is capped at 3 months of fees and excludes data loss; negotiate a "
                    "higher cap for breaches before signing with {party}."
                ],
                [
                    "Said 'standard, no risks' — the liability cap is terrible for us.",
                    "Mixed up which party is the supplier.",
                ],
            ),
            _intent(
                [
                    "Compare the {clause} clause in version 2 vs version 3 of the {contract}.",
                    "what changed in the {clause} wording between the drafts?",
                ],
                [
                    "Version 3 shortens the {clause} notice from 120 to {days_n} days and adds a "
                    "termination fee; everything else in that clause is unchanged."
                ],
                ["Both versions are identical."],
                [
                    "They differ: version 3 has {days_n} days' notice instead of 120 and adds a "
                    "termination fee."
                ],
                ["They are not identical, I can see the change myself."],
            ),
        ],
        "followups": [
            "Can you make it shorter, bullet points only?",
            "What about the {clause} part?",
            "Is the {days_n}-day notice standard?",
            "You missed the appendix.",
            "Which party does that favor?",
        ],
        "negative_comments": [
            "I asked for bullet points and got paragraphs.",
            "It ignored the appendix completely.",
        ],
        "positive_comments": [
            "Great summary, the CFO was happy.",
            "The deadline list saved me an hour.",
            "Spotted the auto-renewal, thanks.",
        ],
        "reasons": {"incomplete": 4, "factual_error": 3, "too_long": 2, "formatting": 1},
        "pii": [
            "the counterparty contact is {email}",
            "their signatory can be reached on {phone}",
        ],
        "lookalikes": ["contract number {digits}"],
    },
    {
        "name": "medication_dosage",
        "label": "Medication dosage questions",
        "rate": 0.25,
        "weight": 0.8,
        "roles": {"customer": 0.8, "agent": 0.2},
        "slots": {
            "med": ["ibuprofen", "acetaminophen", "cetirizine", "loratadine", "naproxen"],
            "weight_kg": ["14", "20", "32", "70"],
            "age": ["4", "7", "10"],
            "mg": ["200", "400", "500", "10"],
            "who": ["my son", "my daughter", "my dad", "my wife"],
        },
        "intents": [
            _intent(
                [
                    "How much {med} can I give my child? {age} years old, about {weight_kg} kg.",
                    "Can you crush {med} tablets for a child who can't swallow pills?",
                ],
                [
                    "For children, {med} is dosed by weight. Use the children's formulation, find "
                    "the {weight_kg} kg band on the package, measure with the syringe provided and "
                    "don't exceed the number of daily doses listed. When unsure, call your "
                    "pharmacist."
                ],
                ["Give the child the adult dose of {mg} mg, it's fine at {age}."],
                [
                    "Children's {med} doses depend on weight ({weight_kg} kg here); use the chart "
                    "on the children's package, not an adult {mg} mg tablet, and ask a pharmacist "
                    "before crushing tablets."
                ],
                [
                    "Giving a {age}-year-old the adult dose? Absolutely not.",
                    "Didn't take the weight into account.",
                ],
            ),
            _intent(
                [
                    "I took {mg} mg of {med} 2 hours ago and the pain is back, can I take more?",
                    "How long should I wait between doses of {med}?",
                    "What's the maximum daily dose of {med} for an adult?",
                ],
                [
                    "Wait at least the interval on the label (usually 4–6 hours) between doses, "
                    "and don't exceed the daily maximum on the package. If the pain returns "
                    "sooner, talk to a pharmacist rather than taking extra."
                ],
                ["You can safely double the dose of {med} if the pain is strong."],
                [
                    "Don't double up: wait the labeled interval and never exceed the daily "
                    "maximum. "
                    "Ask a pharmacist if the pain returns early."
                ],
                [
                    "It told me to double the dose, that is dangerous.",
                    "Contradicts the label on the box.",
                ],
            ),
            _intent(
                [
                    "{who} accidentally took two doses of {med}, what should we do?",
                    "double dose of {med} by mistake, is that dangerous?",
                ],
                [
                    "Call Poison Control (1-800-222-1222 in the US) or your local emergency number "
                    "now, even if they seem fine, and have the package at hand."
                ],
                ["A double dose is harmless; just skip the next one."],
                [
                    "If a double dose was taken, call Poison Control right away (1-800-222-1222 in "
                    "the US) — don't wait for symptoms."
                ],
                ["No mention of calling poison control, that should come first."],
            ),
            _intent(
                [
                    "is it safe to take {med} and alcohol together?",
                    "Can I take {med} with my blood pressure medication?",
                ],
                [
                    "Combining {med} with alcohol raises the risk of side effects, and some pain "
                    "relievers interact with blood pressure medicines; ask your pharmacist about "
                    "your specific medications."
                ],
                ["Alcohol and other medicines don't interact with {med}."],
                [
                    "{med} can interact with alcohol and with blood pressure medication; check "
                    "with a pharmacist before combining them."
                ],
                ["It said alcohol is fine with {med}, that's wrong."],
            ),
            _intent(
                [
                    "The pharmacy gave {med} {mg} mg but the doctor said half that, which is "
                    "right?",
                    "Is {med} okay during pregnancy?",
                ],
                [
                    "Follow your doctor's prescription; if the pharmacy label differs, call the "
                    "pharmacy to confirm before the next dose. In pregnancy, ask your doctor or "
                    "midwife before taking {med}."
                ],
                ["I can't help with medication questions."],
                [
                    "Check with the prescriber: the pharmacy label and the doctor's instruction "
                    "should match before the next dose, and pregnancy questions go to your doctor "
                    "or midwife."
                ],
                [
                    "It refused to answer a basic question from a worried parent.",
                    "Too much disclaimer, not enough answer.",
                ],
            ),
        ],
        "followups": [
            "What if they weigh {weight_kg} kg?",
            "Should I call poison control?",
            "It's the liquid version, 100 mg per 5 ml.",
            "Can I alternate it with another painkiller?",
        ],
        "negative_comments": [
            "This could hurt someone, please review.",
            "Not what the pharmacist told me.",
        ],
        "positive_comments": [
            "Clear and responsible, thank you.",
            "Called the pharmacist as suggested, all good.",
            "Helpful reminder about the dosing interval.",
        ],
        "reasons": {"factual_error": 4, "unsafe": 2, "refusal": 2, "incomplete": 1, "tone": 1},
        "pii": [
            "the doctor's office number is {phone}",
            "please email the dosing chart to {email}",
        ],
    },
    {
        "name": "shipping_delay",
        "label": "Shipping delays and tracking",
        "rate": 0.30,
        "weight": 1.1,
        "roles": {"customer": 0.8, "agent": 0.2},
        "slots": {
            "carrier": ["UPS", "FedEx", "DHL", "USPS", "Royal Mail", "PostNL"],
            "days_late": ["3", "5", "9", "14"],
            "item": [
                "standing desk",
                "laptop",
                "birthday gift",
                "running shoes",
                "coffee grinder",
                "monitor",
            ],
            "order": ["#A-48213", "#A-50977", "#B-11802", "#A-61245"],
            "status": [
                "'Label created'",
                "'In transit'",
                "'Delivery exception'",
                "'Held at customs'",
            ],
        },
        "intents": [
            _intent(
                [
                    "My order {order} ({item}) is {days_late} days late and tracking still says "
                    "{status}. What's going on?",
                    "tracking hasn't updated in a week, {carrier} says contact the sender",
                    "Why is my package {status} for so long?",
                ],
                [
                    "{status} for several days usually means the parcel is waiting for a scan at a "
                    "hub. If there's no update after 5 business days, we open a trace with "
                    "{carrier} and you can choose a replacement or a refund for {order}."
                ],
                ["Shipping delays are out of our control; please contact {carrier} directly."],
                [
                    "After 5 business days without a scan we open a trace with {carrier} ourselves "
                    "and offer a replacement or a refund for {order} — you don't have to chase the "
                    "carrier."
                ],
                [
                    "Telling me to contact {carrier} is useless, they told me to contact you.",
                    "Not acceptable, order {order} is {days_late} days late.",
                ],
            ),
            _intent(
                [
                    "It says delivered but I never got the package. What now?",
                    "{carrier} marked {order} as delivered, nothing at my door",
                ],
                [
                    "Check with neighbors and your mailroom and wait 48 hours, then report it "
                    "under "
                    "Orders → {order} → 'Item not received'; we'll send a replacement or refund."
                ],
                ["The package was delivered according to tracking, so the order is complete."],
                [
                    "Report 'Item not received' under Orders → {order} after 48 hours; a "
                    "replacement or refund is issued even if tracking says delivered."
                ],
                ["Tracking says delivered but it's not here, and the answer just repeats that."],
            ),
            _intent(
                [
                    "Can I get a refund or a replacement if the {item} doesn't arrive before "
                    "Friday?",
                    "Do you refund shipping fees when express delivery arrives {days_late} days "
                    "late?",
                ],
                [
                    "Express shipping fees are refunded automatically when delivery is late, and "
                    "if "
                    "the {item} hasn't moved in 5 business days you can choose a replacement or a "
                    "full refund."
                ],
                ["Once shipped, orders can't be refunded or replaced."],
                [
                    "Late express fees are refunded automatically, and after 5 business days "
                    "without movement you can get a replacement {item} or a full refund."
                ],
                ["It said I can't get a refund, your own policy says otherwise."],
            ),
            _intent(
                [
                    "The box arrived damaged and the {item} is broken. How do I report it?",
                    "{item} arrived smashed, who pays for the return?",
                ],
                [
                    "Take photos of the box and the {item}, then report the damage within 7 days "
                    "under Orders → {order} → 'Report a problem'; we send a prepaid label and ship "
                    "a replacement once approved."
                ],
                ["Damaged items must be returned at your own cost before we can help."],
                [
                    "Report damage within 7 days with photos; we send a prepaid return label and "
                    "ship the replacement {item} right away."
                ],
                [
                    "Didn't tell me where to file the damage claim.",
                    "Why would I pay to return something you broke?",
                ],
            ),
            _intent(
                [
                    "How do customs fees work for my order {order}? {carrier} wants me to pay "
                    "before "
                    "delivery.",
                    "Can I change the delivery address while it's in transit with {carrier}?",
                ],
                [
                    "Customs duties are charged by the destination country and {carrier} collects "
                    "them before delivery; if your order was marked 'duties paid', we reimburse "
                    "them. Address changes in transit go through {carrier}'s delivery manager."
                ],
                ["Customs fees are a scam, don't pay them."],
                [
                    "Pay the duties to {carrier} and send us the receipt: orders marked 'duties "
                    "paid' are reimbursed within 5 days."
                ],
                ["Didn't explain the customs fee at all."],
            ),
        ],
        "followups": [
            "It's been {days_late} days now.",
            "{carrier} told me to ask you.",
            "Can you just send a replacement?",
            "Can I get the shipping fee back at least?",
        ],
        "negative_comments": [
            "Copy-paste answer, nothing about my {item}.",
            "Rude tone, I'm a paying customer.",
        ],
        "positive_comments": [
            "Replacement on the way, thanks.",
            "Good to know about the automatic refund.",
            "Claim filed in two minutes.",
        ],
        "reasons": {"irrelevant": 3, "incomplete": 3, "factual_error": 2, "tone": 2, "other": 1},
        "pii": [
            "please call {phone} when the courier arrives",
            "my account email is {email}",
            "I paid with card {card}",
        ],
        "lookalikes": ["the tracking number is {digits}"],
    },
    {
        "name": "translation",
        "label": "Translation",
        "rate": 0.10,
        "weight": 0.9,
        "roles": {"customer": 0.4, "agent": 0.4, "analyst": 0.2},
        "slots": {
            "pair": [
                {
                    "lang": "German",
                    "phrase": "Where is the train station?",
                    "good": "Wo ist der Bahnhof?",
                    "bad": "Wo ist die Zugstation?",
                },
                {
                    "lang": "French",
                    "phrase": "I would like to cancel my order.",
                    "good": "Je voudrais annuler ma commande.",
                    "bad": "Je voudrais canceller mon ordre.",
                },
                {
                    "lang": "Spanish",
                    "phrase": "The invoice is attached.",
                    "good": "Adjunto la factura.",
                    "bad": "La factura es atada.",
                },
                {
                    "lang": "Japanese",
                    "phrase": "Thank you for your patience.",
                    "good": "お待ちいただきありがとうございます。",
                    "bad": "あなたの忍耐をありがとう。",
                },
                {
                    "lang": "Italian",
                    "phrase": "Your package will arrive tomorrow.",
                    "good": "Il tuo pacco arriverà domani.",
                    "bad": "Il tuo pacchetto arriva ieri.",
                },
                {
                    "lang": "Portuguese",
                    "phrase": "Please reset your password.",
                    "good": "Por favor, redefina sua senha.",
                    "bad": "Por favor, resete sua palavra.",
                },
                {
                    "lang": "Polish",
                    "phrase": "We apologize for the delay.",
                    "good": "Przepraszamy za opóźnienie.",
                    "bad": "My przepraszać dla opóźnienie.",
                },
            ],
            "tone": ["formal", "casual", "polite business"],
        },
        "intents": [
            _intent(
                [
                    "Translate '{phrase}' into {lang}.",
                    "how do you say '{phrase}' in {lang}, {tone} please",
                    "Translate our shop banner into {lang}: '{phrase}'",
                ],
                [
                    'In {lang}: "{good}" — that\'s the natural {tone} phrasing.',
                    "Here it is in {lang}: {good}",
                ],
                ['In {lang}: "{bad}"'],
                ['The natural {lang} phrasing is "{good}".'],
                [
                    '"{bad}" is not natural {lang}, no native speaker says that.',
                    "Too literal, it reads like a machine translation.",
                ],
            ),
            _intent(
                [
                    "Is '{bad}' correct {lang}? I want to say '{phrase}'",
                    "Check my {lang} translation please: {bad}",
                ],
                [
                    '"{bad}" is understandable but sounds like a word-for-word translation; a '
                    'native speaker would say "{good}".'
                ],
                ['"{bad}" is perfectly correct {lang}.'],
                ['"{good}" — "{bad}" is a literal translation a native speaker wouldn\'t use.'],
                ["It said my {lang} was correct but it has a grammar error."],
            ),
            _intent(
                [
                    "Can you translate this customer email into {lang}? It starts with '{phrase}'",
                    "I need a {tone} {lang} version of: {phrase}",
                    "please put this into {lang} for our newsletter: {phrase}",
                ],
                [
                    'A natural {tone} {lang} opening is "{good}"; send me the rest of the email '
                    "and I'll keep the same register."
                ],
                ["I can only translate into English."],
                ['Use "{good}" in {lang}; it keeps the {tone} tone.'],
                [
                    "It refused to translate a simple sentence.",
                    "The tone is way too casual for a customer email.",
                ],
            ),
            _intent(
                [
                    "Give me 3 alternatives in {lang} for '{phrase}', from formal to casual.",
                    "What's the most natural way to write '{phrase}' in {lang} for a support chat?",
                    "our {lang} customers keep asking, how do we write '{phrase}' so it doesn't "
                    "sound robotic?",
                ],
                [
                    'Most natural: "{good}". For a support chat you can keep it as is; in very '
                    "formal letters add a polite opening, and in casual chat shorten it."
                ],
                ['There is only one way to say it: "{bad}"'],
                ['Start from "{good}" — that\'s the natural version; "{bad}" should be avoided.'],
                ["It gave one option instead of three."],
            ),
        ],
        "followups": [
            "Can you make it more {tone}?",
            "Is that how a native speaker would say it?",
            "What about the plural?",
            "Can you back-translate it to English?",
        ],
        "negative_comments": [
            "Wrong language variant for our market.",
            "Missing the accents and special characters.",
        ],
        "positive_comments": [
            "A native speaker on our team says it's perfect.",
            "Great, the formal version is exactly right.",
            "Thanks, sounds natural.",
        ],
        "reasons": {"factual_error": 3, "tone": 3, "incomplete": 2, "refusal": 1},
        "pii": ["the customer's email is {email}"],
    },
    {
        "name": "tax_deductions",
        "label": "Tax deductions",
        "rate": 0.20,
        "weight": 0.9,
        "roles": {"customer": 0.6, "analyst": 0.4},
        "slots": {
            "item": [
                "home office",
                "mileage for client visits",
                "health insurance premiums",
                "a new laptop for freelancing",
                "professional software subscriptions",
            ],
            "status": ["freelancer", "W-2 employee", "small business owner"],
            "year": ["2025", "2026"],
            "amount": ["$1,200", "$3,400", "$850", "$12,000"],
        },
        "intents": [
            _intent(
                [
                    "Can I deduct {item} as a {status}?",
                    "I spent {amount} on {item} in {year}. How much of that is deductible?",
                    "My accountant says {item} isn't deductible for a {status}. Is that right?",
                ],
                [
                    "For a self-employed person in the US, the business-use share of {item} is "
                    "deductible on Schedule C; W-2 employees can't deduct unreimbursed expenses "
                    "federally since 2018."
                ],
                ["Everything you buy can be deducted if you're a {status}."],
                [
                    "Only the business-use share of {item} is deductible, and only when "
                    "self-employed; W-2 employees can't deduct it federally after 2018."
                ],
                [
                    "Not everything is deductible, this is dangerous advice.",
                    "It confuses freelancers and employees.",
                ],
            ),
            _intent(
                [
                    "What's the simplest way to calculate the home office deduction?",
                    "home office deduction as a {status}: simplified or regular method?",
                ],
                [
                    "The simplified home office method allows $5 per square foot up to 300 sq ft "
                    "($1,500 max); the regular method uses the actual share of rent, utilities and "
                    "insurance. Pick whichever is higher."
                ],
                ["You can deduct your entire rent if you sometimes work from home."],
                [
                    "Use the simplified method: $5 per sq ft up to 300 sq ft, max $1,500, or the "
                    "actual-expense method if your share is higher — never the entire rent."
                ],
                ["Deducting the entire rent would get me audited."],
            ),
            _intent(
                [
                    "do I need receipts for {item} if it's under {amount}?",
                    "what records should I keep for {item}?",
                ],
                [
                    "Keep receipts for every deductible expense; the tax office can ask for proof "
                    "regardless of the amount. For mileage, a log with date, destination, purpose "
                    "and miles."
                ],
                ["Receipts aren't needed for anything under {amount}."],
                [
                    "Keep receipts for all deductions — there's no amount below which proof isn't "
                    "needed."
                ],
                ["You do need receipts, my audit proved it."],
            ),
            _intent(
                [
                    "Is it better to itemize or take the standard deduction with {amount} in "
                    "donations?",
                    "should I itemize in {year}? I have {amount} of deductions",
                ],
                [
                    "Itemize only if your itemized total (donations plus mortgage interest, state "
                    "taxes, etc.) exceeds the standard deduction for {year}; {amount} in donations "
                    "alone usually doesn't."
                ],
                ["You should always itemize; it's always better."],
                [
                    "Compare your itemized total with the standard deduction for {year}; {amount} "
                    "of donations alone rarely beats it."
                ],
                ["Didn't answer whether I should itemize."],
            ),
            _intent(
                [
                    "How do I deduct mileage? I drove about 4,000 miles for clients in {year}.",
                    "When is the deadline to make deductible retirement contributions for {year}?",
                ],
                [
                    "Multiply business miles by the standard mileage rate for {year} and keep a "
                    "mileage log; IRA contributions for {year} can be made until the filing "
                    "deadline in April."
                ],
                ["Commuting miles count too, so add your daily drive to the office."],
                [
                    "Only business miles count (not commuting): 4,000 miles × the {year} standard "
                    "rate, backed by a log."
                ],
                ["Commuting is not deductible, the answer is wrong."],
            ),
        ],
        "followups": [
            "What if I'm a {status}?",
            "Does this change for {year}?",
            "What records should I keep?",
            "Which form is that on?",
        ],
        "negative_comments": [
            "That rule changed in 2018, the answer is outdated.",
            "Way too long and still no number.",
            "No mention of which form to use.",
        ],
        "positive_comments": [
            "The simplified method explanation was perfect.",
            "Saved me a call to my accountant.",
            "Clear breakdown, thanks.",
        ],
        "reasons": {"factual_error": 4, "incomplete": 3, "too_long": 1, "irrelevant": 1},
        "pii": [
            "my accountant's number is {phone}",
            "the refund went to card {card}",
            "send the summary to {email}",
        ],
        "lookalikes": ["my e-file confirmation number is {digits}"],
    },
    {
        "name": "resume_writing",
        "label": "Resume and cover letter writing",
        "rate": 0.09,
        "weight": 0.9,
        "roles": {"customer": 0.7, "agent": 0.3},
        "slots": {
            "role": [
                "data analyst",
                "product manager",
                "nurse",
                "backend engineer",
                "UX designer",
                "sales lead",
            ],
            "years": ["2", "5", "8", "12"],
            "company": [
                "a logistics startup",
                "a hospital",
                "a bank",
                "a retail chain",
                "a game studio",
            ],
            "skill": [
                "SQL",
                "stakeholder management",
                "Figma",
                "patient care",
                "Kubernetes",
                "negotiation",
            ],
        },
        "intents": [
            _intent(
                [
                    "Can you rewrite my resume summary for a {role} position? I have {years} years "
                    "of experience at {company}.",
                    "I'm switching careers to {role}. How do I present {years} years at {company}?",
                ],
                [
                    "Summary: {role} with {years} years at {company}, known for {skill} and "
                    "measurable results — for example, cutting reporting time by 40% by automating "
                    "weekly dashboards. Looking to bring that focus to a growing team."
                ],
                [
                    "Hard-working professional with experience in many areas and a passion for "
                    "excellence."
                ],
                [
                    "{role} with {years} years at {company}: led {skill} work that cut turnaround "
                    "time by 30%; now bringing that to a {role} team."
                ],
                [
                    "Sounds robotic, no recruiter will read that.",
                    "It didn't use my {years} years at {company} at all.",
                ],
            ),
            _intent(
                [
                    "turn this into a bullet with impact: 'responsible for reports at {company}'",
                    "What are strong action verbs for a {role} resume?",
                ],
                [
                    "Bullet: 'Automated 12 weekly reports at {company} using {skill}, saving the "
                    "team 6 hours a week and eliminating manual errors.' Strong verbs: led, "
                    "launched, reduced, automated, shipped."
                ],
                [
                    "Responsible for various tasks at {company} including {skill} and other duties "
                    "as assigned."
                ],
                [
                    "'Automated weekly reporting at {company} with {skill}, saving 6 hours a week' "
                    "— start with a verb and end with a number."
                ],
                ["This bullet is as vague as my original."],
            ),
            _intent(
                [
                    "Write a cover letter for a {role} job, I worked at {company} and I'm good at "
                    "{skill}.",
                    "cover letter opening for {role} roles please",
                ],
                [
                    "Dear hiring team, after {years} years at {company}, where I used {skill} to "
                    "ship measurable improvements, I'd like to bring the same focus to your {role} "
                    "opening."
                ],
                ["To whom it may concern, I am writing to apply for the job."],
                [
                    "Open with the role and your strongest result: 'After {years} years at "
                    "{company} "
                    "using {skill}, I'm applying for your {role} opening.'"
                ],
                ["Wrong job title in the cover letter."],
            ),
            _intent(
                [
                    "Make my resume ATS-friendly for {role} roles.",
                    "How long should my resume be with {years} years of experience?",
                ],
                [
                    "ATS tips: one column, standard section headings, no tables or text boxes, "
                    "keywords from the posting such as {skill}. With {years} years, one page, two "
                    "only for recent relevant achievements."
                ],
                ["Always use a two-column design with icons; ATS systems prefer graphics."],
                [
                    "Use a single-column layout with standard headings so the ATS can parse it; "
                    "skip icons and tables, and keep it to one page for {years} years."
                ],
                ["Two columns with icons break every ATS I know."],
            ),
            _intent(
                [
                    "How do I explain a 2-year gap on my resume?",
                    "gap after leaving {company}, what do I write?",
                ],
                [
                    "Address the gap briefly and positively: one line like 'Career break: family "
                    "care (2023–2025), completed a {skill} certificate' is enough."
                ],
                ["Don't mention the gap; just extend the dates of your previous job."],
                [
                    "Be honest about the gap: a one-line 'career break' entry beats altered dates, "
                    "which can fail a background check."
                ],
                ["Suggesting I fake the dates is terrible advice."],
            ),
        ],
        "followups": [
            "Can you make it shorter?",
            "Add numbers to the bullets please.",
            "Make it less formal.",
            "Now tailor it to {company}.",
        ],
        "negative_comments": [
            "Too long, I asked for a summary.",
            "The formatting was lost when I pasted it.",
        ],
        "positive_comments": [
            "Love the new bullets, so much stronger.",
            "Got an interview with this cover letter!",
            "Clear advice on the gap.",
        ],
        "reasons": {"tone": 3, "incomplete": 2, "too_long": 2, "formatting": 2, "factual_error": 1},
        "pii": [
            "my contact line should read {email}",
            "put {phone} as my phone number at the top",
        ],
    },
    {
        "name": "spreadsheet_formulas",
        "label": "Spreadsheet formulas",
        "rate": 0.11,
        "weight": 1.0,
        "roles": {"analyst": 0.5, "agent": 0.3, "admin": 0.2},
        "slots": {
            "app": ["Excel", "Google Sheets", "LibreOffice Calc"],
            "col": ["B", "C", "D", "F"],
            "sheet": ["Sales", "Inventory", "Q3", "Customers"],
            "n": ["500", "2,000", "50,000"],
        },
        "intents": [
            _intent(
                [
                    "How do I look up a price from the {sheet} sheet by product code in {app}?",
                    "My VLOOKUP returns #N/A even though the value is there. Why?",
                    "Why does my VLOOKUP show the wrong price after I sort the {sheet} table?",
                ],
                [
                    'Use an exact match: =XLOOKUP(A2, {sheet}!A:A, {sheet}!{col}:{col}, "not '
                    'found"), or =VLOOKUP(A2, {sheet}!A:{col}, 2, FALSE). #N/A usually means a '
                    "text-vs-number mismatch or trailing spaces: wrap the key in TRIM() or "
                    "VALUE()."
                ],
                [
                    "=VLOOKUP(A2, {sheet}!A:{col}, 2, TRUE)",
                    "#N/A means the file is corrupted; recreate the sheet.",
                ],
                [
                    "=VLOOKUP(A2, {sheet}!A:{col}, 2, FALSE) — TRUE does an approximate match and "
                    "returns wrong prices on unsorted data; fix #N/A with TRIM()/VALUE() on the "
                    "key."
                ],
                [
                    "Approximate match returns the wrong price, it should be FALSE.",
                    "The file is not corrupted, it was a text/number issue.",
                ],
            ),
            _intent(
                [
                    "sum column {col} only where the region is 'North' and the month is March",
                    "How do I total {col} by two conditions in {app}?",
                ],
                [
                    '=SUMIFS({col}:{col}, A:A, "North", B:B, "March") sums column {col} where '
                    "both conditions match."
                ],
                ["=SUM({col}:{col}) will only add the rows for North in March."],
                ['=SUMIFS({col}:{col}, A:A, "North", B:B, "March")'],
                ["SUM doesn't filter anything, that's wrong."],
            ),
            _intent(
                [
                    "Formula to count unique customers in column {col}?",
                    "How do I remove duplicates across {n} rows in {app} but keep the first one?",
                ],
                [
                    "Count them with =COUNTA(UNIQUE({col}2:{col}5000)); to delete duplicates, use "
                    "Data → Remove duplicates, which keeps the first occurrence."
                ],
                ["{app} cannot count unique values; you'll need a macro."],
                ["Count unique values with =COUNTA(UNIQUE({col}2:{col}5000)), no macro needed."],
                ["Of course {app} can count unique values."],
            ),
            _intent(
                [
                    "Convert text dates like 2026-11-03 in column {col} into real dates in {app}.",
                    "dates in {col} are stored as text, sorting is wrong",
                ],
                [
                    "=DATEVALUE({col}2) converts ISO text dates; fill it down, then format the "
                    "column as a date and sort on it."
                ],
                ["Dates stored as text can't be converted; retype them."],
                ["Use =DATEVALUE({col}2) and fill down, then format as date — no retyping needed."],
                ["Retyping {n} rows is not an answer."],
            ),
            _intent(
                [
                    "How do I highlight the whole row when column {col} says 'Overdue'?",
                    "How do I make a dropdown in {app} that depends on another dropdown?",
                ],
                [
                    'Use conditional formatting with a custom formula: =${col}2="Overdue" '
                    "applied to the whole table range. Dependent dropdowns use a named range per "
                    "category and =INDIRECT(A2) in the data validation."
                ],
                ["Conditional formatting can only color single cells."],
                [
                    'Apply =${col}2="Overdue" as a custom-formula rule to the whole range, the $ '
                    "locks the column so the entire row is colored."
                ],
                ["It said only single cells can be colored, which is false."],
            ),
        ],
        "followups": [
            "It still shows #N/A.",
            "Does this work in {app}?",
            "Can you do it without a helper column?",
            "How do I copy it down all {n} rows?",
        ],
        "negative_comments": [
            "The formula has a syntax error in {app}.",
            "It used a function my {app} version doesn't have.",
            "Wall of text for a one-line formula.",
        ],
        "positive_comments": [
            "XLOOKUP worked first try.",
            "TRIM fixed my #N/A, thanks!",
            "The conditional formatting tip was exactly it.",
        ],
        "reasons": {"factual_error": 4, "incomplete": 2, "formatting": 2, "too_long": 1},
        "pii": [
            "the sheet is shared with {email}",
            "column D has phone numbers like {phone}, how do I clean them?",
        ],
        "lookalikes": ["the row with invoice id {digits} is the one failing"],
    },
    {
        "name": "workout_plan",
        "label": "Fitness and workout plans",
        "rate": 0.12,
        "weight": 0.8,
        "roles": {"customer": 0.9, "agent": 0.1},
        "slots": {
            "goal": [
                "run a 5k",
                "build muscle",
                "lose 5 kg",
                "improve my posture",
                "do 10 pull-ups",
            ],
            "days_w": ["3", "4", "5"],
            "minutes_w": ["20", "30", "45", "60"],
            "constraint": [
                "a bad knee",
                "lower back pain",
                "no gym, only dumbbells",
                "a desk job",
                "asthma",
            ],
            "weeks": ["6", "8", "12"],
        },
        "intents": [
            _intent(
                [
                    "Make me a {days_w}-day workout plan to {goal} in {weeks} weeks.",
                    "I only have {minutes_w} minutes a day. What's the best routine to {goal}?",
                    "beginner here, want to {goal}. where do I start?",
                ],
                [
                    "{days_w}-day plan to {goal}: alternate strength days (squats, rows, push-ups, "
                    "planks) with easy cardio, keep each session around {minutes_w} minutes, and "
                    "add a little volume every week for {weeks} weeks."
                ],
                [
                    "Train every day at maximum intensity; rest days slow your progress.",
                    "Do 200 crunches a day to {goal}.",
                ],
                [
                    "Plan {days_w} sessions a week with at least one full rest day, mixing "
                    "strength "
                    "and cardio, and progress the load gradually over {weeks} weeks."
                ],
                [
                    "No rest days at all? I got injured.",
                    "Generic plan, nothing about my goal to {goal}.",
                    "The plan ignores that I only have {minutes_w} minutes.",
                ],
            ),
            _intent(
                [
                    "I have {constraint}. Which exercises should I avoid?",
                    "training with {constraint}, what's safe?",
                ],
                [
                    "With {constraint}, skip high-impact jumps and heavy loaded movements that "
                    "hurt; use step-ups, glute bridges, swimming or cycling, and stop anything "
                    "that causes sharp pain. A physiotherapist can tailor this."
                ],
                ["Run through the pain with {constraint}; your body will adapt."],
                [
                    "With {constraint}, replace running and jumping with cycling or swimming and "
                    "get the pain checked by a physiotherapist."
                ],
                ["Training through pain with {constraint} is dangerous advice."],
            ),
            _intent(
                [
                    "How much protein do I need to {goal}?",
                    "protein per day for someone training {days_w} times a week?",
                ],
                [
                    "Aim for about 1.6 g of protein per kg of body weight per day, spread over 3–4 "
                    "meals."
                ],
                ["You need 4 g of protein per kg of body weight."],
                ["About 1.6 g of protein per kg per day is enough; more adds little."],
                ["4 g/kg of protein is absurd."],
            ),
            _intent(
                [
                    "how many rest days do I need if I train {days_w} times a week?",
                    "I stopped progressing after {weeks} weeks. How do I break the plateau?",
                ],
                [
                    "Training {days_w} days a week, take at least one full rest day and avoid "
                    "working the same muscles on consecutive days. To break a plateau, change one "
                    "variable at a time and check sleep and calories."
                ],
                ["Rest days are for beginners; skip them to break the plateau."],
                [
                    "Keep at least one full rest day with {days_w} sessions a week; plateaus break "
                    "with small changes in reps, sets or tempo, not by dropping rest."
                ],
                ["Skipping rest days is how people get hurt."],
            ),
            _intent(
                [
                    "Can you give me a warm-up routine for {minutes_w}-minute sessions?",
                    "Is it better to do cardio before or after weights if I want to {goal}?",
                ],
                [
                    "Warm up with 3 minutes of easy cardio, then leg swings, arm circles and 2 "
                    "light sets of your first exercise. Do weights first and cardio after when "
                    "strength is the priority."
                ],
                ["Warming up is unnecessary if you stretch afterwards."],
                [
                    "Always warm up: 3 minutes of easy cardio plus 2 light sets; weights before "
                    "cardio when strength matters."
                ],
                ["The exercises aren't explained at all."],
            ),
        ],
        "followups": [
            "Can you make it easier?",
            "What about with {constraint}?",
            "How do I track progress?",
            "What should week 1 look like?",
        ],
        "negative_comments": [
            "The table of training days is broken.",
            "Too long, just give me week 1.",
        ],
        "positive_comments": [
            "Week 1 done, feeling great.",
            "Perfect for my schedule.",
            "The knee-friendly alternatives were great.",
        ],
        "reasons": {
            "factual_error": 3,
            "incomplete": 2,
            "unsafe": 1,
            "formatting": 1,
            "too_long": 1,
        },
        "pii": ["my trainer's number is {phone}"],
    },
    {
        "name": "smart_home_setup",
        "label": "Smart home device setup",
        "rate": 0.20,
        "weight": 1.1,
        "roles": {"customer": 0.8, "admin": 0.2},
        "slots": {
            "device": [
                "smart thermostat",
                "video doorbell",
                "smart plug",
                "Wi-Fi mesh router",
                "robot vacuum",
                "smart lock",
            ],
            "hub": ["the Hub app", "Google Home", "Apple Home", "Alexa"],
            "band": ["2.4 GHz", "5 GHz"],
            "err": ["'Device offline'", "'Pairing failed'", "'No hub found'"],
            "room": ["living room", "hallway", "garage", "bedroom"],
        },
        "intents": [
            _intent(
                [
                    "How do I connect my new {device} to {hub}?",
                    "{hub} doesn't find the {device} during setup, what now?",
                    "My {device} only supports {band}, but my router combines both bands. How do "
                    "I pair it?",
                ],
                [
                    "Open {hub}, tap + → Add device → {device}, and keep your phone on {band} "
                    "Wi-Fi during pairing. If your router merges bands, temporarily create a "
                    "{band}-only network ('split SSID'), pair, then switch back."
                ],
                ["The {device} is not compatible with {hub}."],
                [
                    "It is compatible: add it in {hub} with + → Add device on a {band}-only "
                    "network (split the SSID temporarily), after holding the button for 5 "
                    "seconds."
                ],
                [
                    "It says not compatible, but the box literally has the {hub} logo.",
                    "Didn't explain the {band} issue at all.",
                ],
            ),
            _intent(
                [
                    "The {device} keeps showing {err}. Tried restarting already.",
                    "Why does the {device} in the {room} disconnect every night around 2am?",
                ],
                [
                    "{err} usually means the device lost Wi-Fi. Move it closer to the router or "
                    "add "
                    "a mesh node, and check the router's scheduled reboot or automatic channel "
                    "change, which often happens at night."
                ],
                ["Return the {device}, it's defective."],
                [
                    "Fix the Wi-Fi side first: disable the router's nightly reboot or automatic "
                    "channel change and move the {device} closer; no need to return it."
                ],
                ["Still {err}, the steps didn't help.", "Returning it is not a solution."],
            ),
            _intent(
                [
                    "Is it safe to leave the {device} on the guest network?",
                    "my {device} won't join the network with WPA3, should I drop the password?",
                ],
                [
                    "Yes, a guest or IoT network with WPA2 isolates the {device} from your "
                    "laptops; "
                    "never run it on an open network."
                ],
                ["Disable your Wi-Fi password so the {device} can connect."],
                [
                    "Never remove the Wi-Fi password; put the {device} on a guest or IoT network "
                    "with WPA2 instead."
                ],
                ["Removing the Wi-Fi password is terrible security advice."],
            ),
            _intent(
                [
                    "How do I reset the {device} to factory settings?",
                    "firmware update on the {device} is stuck at 80%",
                ],
                [
                    "Hold the reset button for 10 seconds until the light flashes red, then set it "
                    "up again in {hub}; a stuck update usually recovers after a reset."
                ],
                ["Factory reset your router to fix it."],
                [
                    "Hold the {device}'s reset button for 10 seconds to factory reset it — "
                    "resetting the router isn't needed."
                ],
                [
                    "Resetting my router broke everything else in the house.",
                    "Too long, I only needed the reset steps.",
                ],
            ),
            _intent(
                [
                    "Can I set the {device} in the {room} to turn off automatically at midnight?",
                    "How do I share access to the {device} with my partner?",
                ],
                [
                    "Create an automation in {hub}: Automations → New → Time 00:00 → {device} "
                    "({room}) → Off. To share, invite your partner under Home settings → "
                    "Members."
                ],
                ["Automations are only available on the premium plan."],
                [
                    "Automations are free: Automations → New → Time 00:00 → {device} → Off, and "
                    "members are added under Home settings."
                ],
                ["The menu names don't match the current {hub}."],
            ),
        ],
        "followups": [
            "It still says {err}.",
            "I don't have a separate {band} network.",
            "Where is the reset button?",
            "Does it work without internet?",
        ],
        "negative_comments": [
            "Generic troubleshooting list, nothing specific to the {device}.",
        ],
        "positive_comments": [
            "Paired on the first try with the split network trick.",
            "The automation works, thanks!",
            "Reset steps were spot on.",
        ],
        "reasons": {
            "factual_error": 3,
            "incomplete": 2,
            "unsafe": 1,
            "irrelevant": 1,
            "too_long": 1,
        },
        "pii": [
            "my router admin page is at {ip}",
            "the {device} got the IP {ip} but still shows offline",
            "the account email is {email}",
        ],
    },
]

OPENERS = [
    "",
    "",
    "",
    "",
    "Hi, ",
    "hey ",
    "Hello! ",
    "Quick question: ",
    "Urgent: ",
    "hi there - ",
    "Good morning. ",
    "Hi team, ",
]
CLOSERS = [
    "",
    "",
    "",
    "",
    " Thanks!",
    " thx",
    " Please help.",
    " Thanks in advance.",
    " ty",
    " Appreciate it.",
    " Cheers",
]

NEGATIVE_FOLLOWUPS = [
    "That's not right.",
    "No, that didn't work.",
    "That's not what I asked.",
    "Can you try again? That answer was wrong.",
    "Still not working.",
    "Hmm, are you sure?",
]
POSITIVE_FOLLOWUP_PREFIXES = [
    "Thanks! One more thing: ",
    "ok great. ",
    "Got it. Also, ",
    "Perfect. ",
    "",
    "",
]

REASON_COMMENTS = {
    "factual_error": [
        "This is just wrong.",
        "The facts here are incorrect.",
        "Incorrect answer, please double-check.",
    ],
    "incomplete": [
        "It stopped halfway through.",
        "Missing the most important part.",
        "Only answered half of my question.",
    ],
    "irrelevant": [
        "Has nothing to do with what I asked.",
        "Off topic.",
        "Answered a different question.",
    ],
    "tone": [
        "Condescending tone, not appreciated.",
        "Way too casual for a customer-facing answer.",
    ],
    "too_long": ["Way too long, I needed one sentence.", "tl;dr — just give me the answer."],
    "formatting": [
        "The formatting is broken.",
        "Please use bullet points, this is a wall of text.",
        "Markdown didn't render, I see asterisks everywhere.",
    ],
    "refusal": [
        "Why did it refuse? This is a normal question.",
        "It refused to answer a harmless question.",
    ],
    "unsafe": [
        "This advice could actually hurt someone.",
        "Dangerous answer, please review.",
        "This is unsafe and should never be suggested.",
    ],
    "other": ["Not helpful.", "meh", "Didn't help."],
}
GENERIC_NEGATIVE_COMMENTS = [
    "Not helpful at all.",
    "Didn't answer my question.",
    "Useless answer.",
    "wrong",
]
GENERIC_POSITIVE_COMMENTS = [
    "Thanks, that helped.",
    "great answer",
    "Exactly what I needed.",
    "Saved me a lot of time.",
    "Clear and quick 👍",
]
CORRECTION_COMMENTS = [
    "Here's what it should say.",
    "Fixed the answer.",
    "Correct version below.",
    "This is the right answer.",
]
LATE_COMMENTS = [
    "Coming back to this from yesterday: ",
    "Follow-up on yesterday's answer: ",
    "Tried it this morning. ",
]

COMMENT_PII = [
    "Email me at {email} if you need details.",
    "Call me on {phone}.",
    "You can reach me at {email}.",
    "My number is {phone}, happy to explain.",
]
CORRECTION_PII = ["(Confirmed with our team at {email}.)", "Questions: {phone}."]
GENERIC_REQUEST_PII = ["My email is {email}.", "You can call me at {phone}."]
GENERIC_LOOKALIKES = ["My order number is {digits}.", "Reference: {digits}."]

PAYLOADS = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '<svg onload="window.__pwned=1"></svg>',
    '"><script>window.__pwned=1</script>',
    '<a href="javascript:window.__pwned=1">click me</a>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    "</textarea><script>window.__pwned=1</script>",
]
PAYLOAD_WRAPPERS = [
    "{payload}",
    "I typed {payload} into the name field and the page went blank.",
    "The preview shows {payload} instead of my text.",
    "{payload} <- this is what the export contains",
]

SYSTEM_PROMPTS = {
    "support-v12": "You are Nimbus, Acme's assistant. Answer the user's question accurately and "
    "concisely. If you are not sure, say so.",
    "support-v13": "You are Nimbus, Acme's assistant. Answer accurately and concisely, in the "
    "user's language, with short paragraphs or bullet points. Ask a clarifying question when the "
    "request is ambiguous. For medication, never go beyond the label and refer to a pharmacist.",
}

# Raw-text pools for PII values: combined deterministically by the generator's own RNG.
FIRST_NAMES = [
    "jane",
    "omar",
    "li",
    "maria",
    "tom",
    "priya",
    "lukas",
    "aiko",
    "carlos",
    "fatima",
    "noah",
    "elena",
    "kwame",
    "sofia",
]
LAST_NAMES = [
    "doe",
    "haddad",
    "wei",
    "rossi",
    "baker",
    "sharma",
    "becker",
    "tanaka",
    "mendes",
    "khan",
    "smith",
    "petrov",
    "mensah",
    "novak",
]
EMAIL_DOMAINS = [
    "gmail.com",
    "outlook.com",
    "example.com",
    "yahoo.co.uk",
    "proton.me",
    "acme-corp.com",
    "mail.de",
    "uni-hamburg.de",
]

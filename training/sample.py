"""Synthetic helpdesk tickets for the quickstart and the tests: NOT real data.

Every ticket produced here is made up from templates: the customers, e-mail
addresses, phone numbers, order numbers and companies are fictional, and the card
numbers are the public test numbers of the card networks. The data exist so that
the pipeline can be tried end to end without a helpdesk export, and so that tests
have realistic text to chew on (HTML, quoted replies, signatures, typos, PII to
mask, several languages). Do not draw conclusions about real ticket traffic, and
do not report model quality measured on them.

The labels are learnable from the text but deliberately not perfectly: about one
ticket in eleven carries weaker or missing cues for a task and a few percent of
labels are flipped, so a good bag-of-words model lands well below a perfect score.

``generate_tickets`` is deterministic: the same arguments give the same frame,
byte for byte, because every random draw comes from generators seeded by ``seed``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import pandas as pd

from features.schema import CHANNELS, CUSTOMER_TIERS, SENTIMENT_LABELS, TASKS, TICKET_COLUMNS, URGENCY_LABELS

__all__ = ["DEFAULT_CATEGORIES", "DEFAULT_START", "SUPPORTED_LANGUAGES", "generate_tickets", "write_tickets"]

DEFAULT_CATEGORIES: Final[tuple[str, ...]] = (
    "billing",
    "technical",
    "account",
    "security",
    "shipping",
    "feature_request",
    "how_to",
)
SUPPORTED_LANGUAGES: Final[tuple[str, ...]] = ("en", "de", "es", "fr")
#: A fixed default so that the output never depends on the current clock.
DEFAULT_START: Final[pd.Timestamp] = pd.Timestamp("2026-01-05 00:00", tz="UTC")

OUTPUT_COLUMNS: Final[tuple[str, ...]] = (*TICKET_COLUMNS, *TASKS)
WRITE_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".parquet", ".jsonl")

# --------------------------------------------------------------------------------------
# How the ticket facts are distributed. Probabilities are rough guesses at a mid-sized
# B2B helpdesk; they only need to be plausible and imbalanced, not exact.
# --------------------------------------------------------------------------------------

# English dominates; the rest share what is left. Renormalised over the requested languages.
_LANGUAGE_WEIGHTS: Final[dict[str, float]] = {"en": 0.70, "de": 0.12, "es": 0.09, "fr": 0.09}
_TIER_WEIGHTS: Final[tuple[float, ...]] = (0.40, 0.42, 0.18)  # free, standard, enterprise
# Enterprise customers have phone lines and account managers, free users mostly use forms.
_CHANNEL_WEIGHTS_BY_TIER: Final[dict[str, tuple[float, ...]]] = {  # email, web, chat, phone, social, api
    "free": (0.34, 0.33, 0.18, 0.02, 0.11, 0.02),
    "standard": (0.40, 0.24, 0.20, 0.08, 0.04, 0.04),
    "enterprise": (0.38, 0.12, 0.15, 0.22, 0.01, 0.12),
}
_CATEGORY_WEIGHTS: Final[tuple[float, ...]] = (0.18, 0.25, 0.15, 0.06, 0.11, 0.10, 0.15)
# Urgency (critical, high, medium, low) per category: security incidents are the most urgent,
# wishes and questions the least. The marginal comes out near 8/22/40/30 percent.
_URGENCY_BY_CATEGORY: Final[tuple[tuple[float, ...], ...]] = (
    (0.04, 0.20, 0.46, 0.30),  # billing
    (0.13, 0.32, 0.38, 0.17),  # technical
    (0.06, 0.24, 0.44, 0.26),  # account
    (0.38, 0.34, 0.20, 0.08),  # security
    (0.03, 0.22, 0.45, 0.30),  # shipping
    (0.01, 0.05, 0.30, 0.64),  # feature_request
    (0.01, 0.07, 0.37, 0.55),  # how_to
)
# A positive shift moves probability towards critical on the logit scale below.
_URGENCY_SEVERITY: Final[tuple[float, ...]] = (1.5, 0.5, -0.5, -1.5)
_URGENCY_SHIFT_BY_TIER: Final[tuple[float, ...]] = (-0.15, 0.0, 0.3)
# People pick up the phone or open a chat when something is burning.
_URGENCY_SHIFT_BY_CHANNEL: Final[tuple[float, ...]] = (0.0, -0.1, 0.2, 0.35, 0.0, 0.15)
# Sentiment (negative, neutral, positive) per urgency: outages make people angry.
_SENTIMENT_BY_URGENCY: Final[tuple[tuple[float, ...], ...]] = (
    (0.66, 0.29, 0.05),  # critical
    (0.48, 0.40, 0.12),  # high
    (0.30, 0.50, 0.20),  # medium
    (0.18, 0.48, 0.34),  # low
)
# Public complaints on social media skew negative.
_SOCIAL_NEGATIVE_LOGIT: Final[float] = 0.6

# Share of tickets whose cues for a task are weaker or missing, and of flipped labels.
_WEAK_CUE_RATE: Final[float] = 0.09
_MIXED_CATEGORY_RATE: Final[float] = 0.06  # a second topic in the text, sometimes in the subject
_VAGUE_CATEGORY_RATE: Final[float] = 0.04  # "Problem" / "Something isn't working"
_LABEL_NOISE_RATE: Final[float] = 0.03
_TYPO_RATE: Final[float] = 0.10
_ROUND_THE_CLOCK_URGENCIES: Final[frozenset[int]] = frozenset({0, 1})  # critical, high

# Local-time arrival profile: a business-day hump, but a helpdesk never sleeps.
_BUSINESS_HOURS: Final[tuple[float, ...]] = (
    0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 1.0, 1.6, 1.9, 2.0, 1.9,
    1.5, 1.8, 1.9, 1.8, 1.6, 1.3, 1.0, 0.85, 0.75, 0.6, 0.45, 0.35,
)  # fmt: skip
_BUSINESS_WEEKDAYS: Final[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0, 0.92, 0.4, 0.35)  # Monday first
# Outages do not wait for Monday: urgent tickets arrive much more evenly.
_URGENT_WEEKDAYS: Final[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0, 0.95, 0.75, 0.7)

# Per-channel probabilities of the pieces of a ticket body.
# Order follows CHANNELS: email, web, chat, phone, social, api.
_GREETING_RATE: Final[tuple[float, ...]] = (0.9, 0.6, 0.4, 0.0, 0.0, 0.3)
_CLOSING_RATE: Final[tuple[float, ...]] = (0.85, 0.5, 0.2, 0.0, 0.0, 0.2)
_SIGNATURE_RATE: Final[tuple[float, ...]] = (0.3, 0.08, 0.0, 0.0, 0.0, 0.0)
_QUOTED_RATE: Final[tuple[float, ...]] = (0.2, 0.0, 0.0, 0.0, 0.0, 0.0)
_HTML_RATE: Final[tuple[float, ...]] = (0.25, 0.12, 0.0, 0.0, 0.0, 0.0)
_CONTACT_RATE: Final[float] = 0.3
_CARD_RATE_BILLING: Final[float] = 0.12
_CARD_RATE_OTHER: Final[float] = 0.01

# --------------------------------------------------------------------------------------
# Text. Each language has the same cue structure so that labels mean the same everywhere.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LanguageText:
    """Everything language-specific a ticket is assembled from."""

    subjects: Mapping[str, tuple[str, ...]]  # by category
    problems: Mapping[str, tuple[str, ...]]  # by category
    vague_subjects: tuple[str, ...]  # say nothing about the category
    vague_problems: tuple[str, ...]
    urgency_cues: Mapping[str, tuple[str, ...]]  # by urgency label
    sentiment_cues: Mapping[str, tuple[str, ...]]  # by sentiment label
    subject_prefixes: Mapping[str, tuple[str, ...]]  # by urgency label; empty: none
    greetings: tuple[str, ...]
    closings: tuple[str, ...]
    signature: str
    contact_lines: tuple[str, ...]
    card_lines: tuple[str, ...]
    quote_header: str
    quoted_replies: tuple[str, ...]
    reply_prefix: str
    call_notes_prefix: str
    weekdays: tuple[str, ...]
    months: tuple[str, ...]
    names: tuple[str, ...]
    titles: tuple[str, ...]
    phone_formats: tuple[str, ...]  # str.format with d = ten random digits
    free_mail_domains: tuple[str, ...]
    carriers: tuple[str, ...]
    features: tuple[str, ...]
    amounts: tuple[str, ...]


_SUPPORT_FROM: Final[str] = "Nightdesk Support <support@nightdesk.example>"

_ENGLISH = _LanguageText(
    subjects={
        "billing": (
            "Charged twice for order {order}",
            "Question about invoice {invoice}",
            "Refund not received for {order}",
            "Wrong amount on my last invoice",
            "Subscription renewed after I cancelled",
            "Need a VAT receipt for {invoice}",
        ),
        "technical": (
            "{product} keeps crashing",
            "Error {error} when saving",
            "{product} not loading in {browser}",
            "Sync failing since the last update",
            "API returns {error} intermittently",
            "Dashboard shows a blank page",
        ),
        "account": (
            "Can't log in to my account",
            "Password reset email never arrives",
            "Please change the owner of our workspace",
            "Locked out after changing my phone",
            "Request to delete my account",
            "Need to update the email on my account",
        ),
        "security": (
            "Suspicious login from unknown location",
            "Possible phishing email using your name",
            "Someone accessed our account",
            "Unauthorized API key activity",
            "Reporting a vulnerability in {product}",
            "Our data may have been exposed",
        ),
        "shipping": (
            "Order {order} hasn't arrived",
            "Package damaged on delivery",
            "Tracking for {order} not updating",
            "Wrong item delivered for {order}",
            "Change shipping address for {order}",
            "Delivery stuck with {carrier}",
        ),
        "feature_request": (
            "Feature request: {feature}",
            "Would love to see {feature}",
            "Suggestion for {product}",
            "Any plans for {feature}?",
            "Idea: {feature}",
        ),
        "how_to": (
            "How do I export my data?",
            "How to set up {product} for my team",
            "Where can I find the usage reports?",
            "Question about configuring notifications",
            "Is it possible to share a dashboard?",
            "How to connect {product} to Slack",
        ),
    },
    problems={
        "billing": (
            "I was charged twice for order {order}; both charges of {amount} show on my statement.",
            "Invoice {invoice} lists {amount}, but our plan should cost less than that.",
            "I cancelled my subscription last month but was billed {amount} again today.",
            "I requested a refund for order {order} two weeks ago and still have not received it.",
            "Our finance team needs a corrected invoice for {invoice} with our VAT number on it.",
            "The payment page keeps declining my card even though it is valid.",
        ),
        "technical": (
            "{product} crashes with error {error} every time I try to save a report.",
            "Since the last update, {product} shows a blank page in {browser}.",
            "Our sync job fails with {error} and nothing is imported into {product}.",
            "The API returns {error} for about half of our requests, see {url}.",
            "Uploads time out after a few seconds and the logs only say {error}.",
            "The mobile app freezes on the loading screen after the update.",
        ),
        "account": (
            "I can't log in to my account; it says my password is wrong although I just reset it.",
            "The password reset e-mail never arrives at {email}.",
            "I changed phones and can no longer pass two-factor authentication.",
            "Please transfer ownership of our workspace from my former colleague to {email}.",
            "I would like my account and all my personal data deleted.",
            "I need to change the e-mail address on my account to {email}.",
        ),
        "security": (
            "We got a login alert from an unknown country for {email}, and nobody on our team was there.",
            "Customers received a phishing e-mail pretending to be from {product}, linking to {phish_url}.",
            "Someone created new admin users in our workspace that we don't recognise.",
            "Our API key was used from an IP address we have never seen and made hundreds of calls.",
            "I found a cross-site scripting vulnerability on your login page and want to report it.",
            "We suspect that customer records were exported from our account without permission.",
        ),
        "shipping": (
            "My order {order} was supposed to arrive on Monday and is still not here.",
            "The package for order {order} arrived damaged and the {device} doesn't turn on.",
            "Tracking for {order} with {carrier} hasn't updated in {n_days} days.",
            "I received the wrong item; order {order} should contain a {device}.",
            "Can you change the delivery address for order {order}? We moved offices.",
            "{carrier} says the parcel for {order} was delivered, but nobody received it.",
        ),
        "feature_request": (
            "It would be great if {product} supported {feature}.",
            "Our team would really benefit from {feature}.",
            "Are there any plans to add {feature}? Many of our users ask for it.",
            "Please consider adding {feature} to the roadmap.",
            "Other tools already offer {feature}, so it would be nice to have it in {product} too.",
        ),
        "how_to": (
            "How can I export all tickets from {product} to CSV?",
            "Where do I set up e-mail notifications for my team?",
            "Is there a guide for connecting {product} to Slack?",
            "Could you explain how user roles and permissions work?",
            "I can't find where to change the language of the interface.",
            "What is the best way to share a dashboard with people outside our company?",
        ),
    },
    vague_subjects=("Problem", "Need help", "Question", "Something is wrong", "Follow-up on my request", "Help!!"),
    vague_problems=(
        "Something isn't working the way it should.",
        "I have an issue and would like someone to look at it.",
        "Following up on my previous message, I still need help with this.",
        "Can someone from your team get back to me about this?",
        "We ran into a problem this morning.",
    ),
    urgency_cues={
        "critical": (
            "Production is down and all users are affected.",
            "This is causing data loss right now, we need help ASAP!",
            "This looks like a security breach, please escalate immediately.",
            "Our whole company is blocked; every minute costs us money.",
            "URGENT: nothing works for any of our customers.",
        ),
        "high": (
            "Please look into this as soon as possible.",
            "This is blocking my team from working today.",
            "We need this fixed by end of day.",
            "Several users are affected and it is getting worse.",
        ),
        "medium": (
            "It would be good to get this sorted this week.",
            "A few people on the team have noticed it.",
            "It's not blocking us, but it is annoying.",
            "We have a workaround for now.",
        ),
        "low": (
            "No rush, whenever you get a chance.",
            "Just a question, nothing urgent.",
            "Low priority, just curious.",
            "Take your time, this can wait.",
        ),
    },
    sentiment_cues={
        "negative": (
            "This is unacceptable.",
            "I am very frustrated with this.",
            "Honestly, I'm really disappointed with your service.",
            "This is the third time I'm writing about this!",
            "I'm seriously considering cancelling our contract.",
        ),
        "neutral": (
            "Please let me know the next steps.",
            "Let me know if you need more information.",
            "Details are below.",
            "I have included the relevant details.",
        ),
        "positive": (
            "Thanks so much, great service as always!",
            "We love the product, this is the only issue.",
            "Your team has always been super helpful, thank you!",
            "Really appreciate your help, you guys are great.",
        ),
    },
    subject_prefixes={
        "critical": ("URGENT: ", "[URGENT] ", "ASAP: "),
        "high": ("Important: ", "Please help: "),
        "medium": (),
        "low": ("Quick question: ", "Question: "),
    },
    greetings=("Hi,", "Hello,", "Hi {agent},", "Dear Support Team,", "Hello support,", "Hey there,"),
    closings=("Thanks,\n{first}", "Best,\n{first}", "Regards,\n{name}", "Cheers,\n{first}", "Thank you,\n{name}"),
    signature="--\nBest regards,\n{name}\n{title} | {company}\nPhone: {phone}",
    contact_lines=(
        "You can reach me at {phone}.",
        "Please reply to {email}.",
        "My account e-mail is {email}.",
        "Screenshot: {url}",
        "Call me back on {phone} if that's easier.",
    ),
    card_lines=("The charge was made on card {card}.", "Card used: {card}."),
    quote_header="On {weekday}, {day} {month} {year} at {hour:02d}:{minute:02d}, " + _SUPPORT_FROM + " wrote:",
    quoted_replies=(
        "Thanks for contacting us. Could you send us a screenshot of the error?",
        "We have forwarded your request to our specialists.",
        "Could you confirm the e-mail address on the account?",
    ),
    reply_prefix="Re: ",
    call_notes_prefix="Call notes: ",
    weekdays=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    months=("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    names=(
        "Emily Carter", "James Wilson", "Priya Sharma", "Michael Chen", "Sarah O'Brien", "David Okafor",
        "Jessica Nguyen", "Daniel Murphy", "Aisha Khan", "Tom Becker", "Olivia Brown", "Ryan Patel",
    ),  # fmt: skip
    titles=("Operations Manager", "IT Lead", "Office Manager", "Head of Support", "CTO", "Finance Manager"),
    phone_formats=(
        "+1 ({d[0]}{d[1]}{d[2]}) 555-01{d[3]}{d[4]}",
        "({d[0]}{d[1]}{d[2]}) 555-01{d[3]}{d[4]}",
        "+44 20 7946 0{d[0]}{d[1]}{d[2]}",
    ),
    free_mail_domains=("gmail.com", "outlook.com", "yahoo.com", "icloud.com"),
    carriers=("UPS", "FedEx", "USPS", "DHL", "Royal Mail"),
    features=(
        "dark mode", "single sign-on with Okta", "bulk editing", "CSV export for reports",
        "custom ticket fields", "an offline mode in the mobile app", "webhooks for status changes",
    ),  # fmt: skip
    amounts=("$9.99", "$19.00", "$29.00", "$49.00", "$99.00", "$149.00", "$299.00", "$1,299.00", "£49.00"),
)

_GERMAN = _LanguageText(
    subjects={
        "billing": (
            "Doppelte Abbuchung für Bestellung {order}",
            "Frage zur Rechnung {invoice}",
            "Rückerstattung für {order} nicht erhalten",
            "Abo nach Kündigung verlängert",
        ),
        "technical": (
            "{product} stürzt ständig ab",
            "Fehler {error} beim Speichern",
            "Synchronisierung schlägt seit dem Update fehl",
            "{product} lädt nicht in {browser}",
        ),
        "account": (
            "Kann mich nicht einloggen",
            "E-Mail zum Zurücksetzen des Passworts kommt nicht an",
            "Nach Handywechsel aus dem Konto ausgesperrt",
            "E-Mail-Adresse im Konto ändern",
        ),
        "security": (
            "Verdächtige Anmeldung von unbekanntem Ort",
            "Phishing-Mail in Ihrem Namen",
            "Unbekannte Admin-Benutzer in unserem Konto",
            "Sicherheitslücke in {product} gefunden",
        ),
        "shipping": (
            "Bestellung {order} ist nicht angekommen",
            "Paket beschädigt geliefert",
            "Sendungsverfolgung für {order} aktualisiert sich nicht",
            "Falscher Artikel geliefert",
        ),
        "feature_request": (
            "Funktionswunsch: {feature}",
            "Vorschlag für {product}",
            "Gibt es Pläne für {feature}?",
        ),
        "how_to": (
            "Wie exportiere ich meine Daten?",
            "Wie verbinde ich {product} mit Slack?",
            "Frage zu den Benachrichtigungseinstellungen",
            "Wo finde ich die Nutzungsberichte?",
        ),
    },
    problems={
        "billing": (
            "Für die Bestellung {order} wurden mir zweimal {amount} abgebucht.",
            "Die Rechnung {invoice} weist {amount} aus, unser Tarif kostet aber weniger.",
            "Ich habe mein Abo letzten Monat gekündigt und heute wurden trotzdem {amount} abgebucht.",
            "Die Rückerstattung für Bestellung {order} habe ich vor zwei Wochen beantragt und noch nicht erhalten.",
        ),
        "technical": (
            "{product} stürzt mit Fehler {error} ab, sobald ich einen Bericht speichern will.",
            "Seit dem letzten Update zeigt {product} in {browser} nur eine leere Seite.",
            "Unser Sync-Job bricht mit {error} ab und es wird nichts importiert.",
            "Die API liefert bei etwa der Hälfte der Anfragen {error}, siehe {url}.",
        ),
        "account": (
            "Ich kann mich nicht einloggen, obwohl ich mein Passwort gerade zurückgesetzt habe.",
            "Die E-Mail zum Zurücksetzen des Passworts kommt bei {email} nie an.",
            "Ich habe ein neues Handy und komme nicht mehr durch die Zwei-Faktor-Authentifizierung.",
            "Bitte ändern Sie die E-Mail-Adresse meines Kontos auf {email}.",
        ),
        "security": (
            "Wir haben eine Anmeldewarnung aus einem unbekannten Land für {email} erhalten.",
            "Kunden haben eine Phishing-Mail im Namen von {product} bekommen, mit Link auf {phish_url}.",
            "In unserem Workspace wurden neue Admin-Benutzer angelegt, die wir nicht kennen.",
            "Unser API-Schlüssel wurde von einer fremden IP-Adresse aus hunderte Male verwendet.",
        ),
        "shipping": (
            "Meine Bestellung {order} sollte am Montag kommen und ist immer noch nicht da.",
            "Das Paket zur Bestellung {order} kam beschädigt an und der {device} lässt sich nicht einschalten.",
            "Die Sendungsverfolgung bei {carrier} für {order} hat sich seit {n_days} Tagen nicht geändert.",
            "Ich habe den falschen Artikel erhalten, bestellt hatte ich {device}.",
        ),
        "feature_request": (
            "Es wäre toll, wenn {product} {feature} unterstützen würde.",
            "Unser Team würde sehr von dieser Funktion profitieren: {feature}.",
            "Gibt es Pläne für {feature}? Viele unserer Nutzer fragen danach.",
        ),
        "how_to": (
            "Wie kann ich alle Tickets aus {product} als CSV exportieren?",
            "Wo richte ich E-Mail-Benachrichtigungen für mein Team ein?",
            "Gibt es eine Anleitung, um {product} mit Slack zu verbinden?",
            "Können Sie erklären, wie Benutzerrollen und Berechtigungen funktionieren?",
        ),
    },
    vague_subjects=("Problem", "Brauche Hilfe", "Frage", "Etwas stimmt nicht", "Nachfrage zu meiner Anfrage"),
    vague_problems=(
        "Irgendetwas funktioniert nicht so, wie es soll.",
        "Ich habe ein Problem und bräuchte Unterstützung.",
        "Ich melde mich noch einmal wegen meiner letzten Nachricht.",
        "Kann sich bitte jemand aus Ihrem Team bei mir melden?",
    ),
    urgency_cues={
        "critical": (
            "Die Produktion steht still, alle Nutzer sind betroffen.",
            "Wir haben gerade Datenverlust, bitte sofort helfen!",
            "Das sieht nach einem Sicherheitsvorfall aus, bitte sofort eskalieren.",
            "DRINGEND: Bei keinem unserer Kunden funktioniert etwas.",
        ),
        "high": (
            "Bitte schauen Sie sich das so schnell wie möglich an.",
            "Das blockiert heute mein ganzes Team.",
            "Wir brauchen bis heute Abend eine Lösung.",
            "Mehrere Nutzer sind betroffen und es wird schlimmer.",
        ),
        "medium": (
            "Es wäre gut, wenn das diese Woche gelöst wird.",
            "Einige Kollegen haben es bemerkt.",
            "Es blockiert uns nicht, ist aber lästig.",
            "Wir haben vorerst einen Workaround.",
        ),
        "low": (
            "Keine Eile, wann immer Sie Zeit haben.",
            "Nur eine Frage, nichts Dringendes.",
            "Niedrige Priorität, nur aus Neugier.",
            "Lassen Sie sich Zeit, das kann warten.",
        ),
    },
    sentiment_cues={
        "negative": (
            "Das ist inakzeptabel.",
            "Ich bin sehr frustriert.",
            "Ehrlich gesagt bin ich von Ihrem Service sehr enttäuscht.",
            "Das ist jetzt schon das dritte Mal, dass ich deswegen schreibe!",
        ),
        "neutral": (
            "Bitte teilen Sie mir die nächsten Schritte mit.",
            "Melden Sie sich, falls Sie weitere Informationen brauchen.",
            "Details unten.",
        ),
        "positive": (
            "Vielen Dank, super Service wie immer!",
            "Wir lieben das Produkt, das ist das einzige Problem.",
            "Ihr Team war immer sehr hilfsbereit, danke!",
        ),
    },
    subject_prefixes={
        "critical": ("DRINGEND: ", "[DRINGEND] "),
        "high": ("Wichtig: ",),
        "medium": (),
        "low": ("Kurze Frage: ", "Frage: "),
    },
    greetings=("Hallo,", "Guten Tag,", "Hallo {agent},", "Sehr geehrte Damen und Herren,", "Liebes Support-Team,"),
    closings=("Danke,\n{first}", "Viele Grüße\n{name}", "Beste Grüße\n{first}", "Mit freundlichen Grüßen\n{name}"),
    signature="--\nMit freundlichen Grüßen\n{name}\n{title} | {company}\nTel.: {phone}",
    contact_lines=(
        "Sie erreichen mich unter {phone}.",
        "Bitte antworten Sie an {email}.",
        "Meine Konto-E-Mail ist {email}.",
        "Screenshot: {url}",
    ),
    card_lines=("Die Abbuchung erfolgte auf die Karte {card}.",),
    quote_header="Am {weekday}, {day}. {month} {year} um {hour:02d}:{minute:02d} schrieb " + _SUPPORT_FROM + ":",
    quoted_replies=(
        "Vielen Dank für Ihre Nachricht. Könnten Sie uns einen Screenshot des Fehlers schicken?",
        "Wir haben Ihre Anfrage an unsere Spezialisten weitergeleitet.",
        "Könnten Sie bitte die E-Mail-Adresse des Kontos bestätigen?",
    ),
    reply_prefix="AW: ",
    call_notes_prefix="Gesprächsnotiz: ",
    weekdays=("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."),
    months=("Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."),
    names=(
        "Jürgen Müller", "Anna Schmidt", "Lukas Weber", "Sabine Fischer",
        "Mehmet Yılmaz", "Katrin Wagner", "Felix Hoffmann", "Laura Schäfer",
    ),  # fmt: skip
    titles=("Teamleiter IT", "Office Managerin", "Geschäftsführer", "Leiterin Buchhaltung"),
    phone_formats=(
        "+49 30 {d[0]}{d[1]}{d[2]}{d[3]}{d[4]}{d[5]}{d[6]}",
        "+49 151 {d[0]}{d[1]}{d[2]}{d[3]} {d[4]}{d[5]}{d[6]}{d[7]}",
        "089 {d[0]}{d[1]}{d[2]}{d[3]}{d[4]}{d[5]}",
    ),
    free_mail_domains=("gmx.de", "web.de", "gmail.com", "t-online.de"),
    carriers=("DHL", "DPD", "Hermes", "GLS"),
    features=("Dark Mode", "Single Sign-on mit Okta", "Massenbearbeitung", "CSV-Export für Berichte", "Offline-Modus"),
    amounts=("9,99 €", "19,00 €", "49,00 €", "99,00 €", "149,00 €", "1.299,00 €"),
)

_SPANISH = _LanguageText(
    subjects={
        "billing": (
            "Cobro duplicado en el pedido {order}",
            "Duda sobre la factura {invoice}",
            "No he recibido el reembolso de {order}",
            "Me siguen cobrando tras cancelar",
        ),
        "technical": (
            "{product} se cierra constantemente",
            "Error {error} al guardar",
            "La sincronización falla desde la última actualización",
            "{product} no carga en {browser}",
        ),
        "account": (
            "No puedo iniciar sesión",
            "No llega el correo para restablecer la contraseña",
            "Bloqueado tras cambiar de móvil",
            "Cambiar el correo de mi cuenta",
        ),
        "security": (
            "Inicio de sesión sospechoso desde una ubicación desconocida",
            "Correo de phishing usando su nombre",
            "Usuarios administradores desconocidos en nuestra cuenta",
            "Vulnerabilidad encontrada en {product}",
        ),
        "shipping": (
            "El pedido {order} no ha llegado",
            "Paquete dañado en la entrega",
            "El seguimiento de {order} no se actualiza",
            "Me enviaron un artículo equivocado",
        ),
        "feature_request": (
            "Sugerencia: {feature}",
            "Propuesta para {product}",
            "¿Hay planes para añadir {feature}?",
        ),
        "how_to": (
            "¿Cómo exporto mis datos?",
            "¿Cómo conecto {product} con Slack?",
            "Pregunta sobre las notificaciones",
            "¿Dónde encuentro los informes de uso?",
        ),
    },
    problems={
        "billing": (
            "Me han cobrado dos veces {amount} por el pedido {order}.",
            "La factura {invoice} indica {amount}, pero nuestro plan debería costar menos.",
            "Cancelé mi suscripción el mes pasado y hoy me han vuelto a cobrar {amount}.",
            "Solicité el reembolso del pedido {order} hace dos semanas y todavía no lo he recibido.",
        ),
        "technical": (
            "{product} se cierra con el error {error} cada vez que intento guardar un informe.",
            "Desde la última actualización, {product} muestra una página en blanco en {browser}.",
            "La tarea de sincronización falla con {error} y no se importa nada.",
            "La API devuelve {error} en la mitad de las peticiones, ver {url}.",
        ),
        "account": (
            "No puedo iniciar sesión aunque acabo de restablecer la contraseña.",
            "El correo para restablecer la contraseña nunca llega a {email}.",
            "Cambié de móvil y ya no puedo pasar la verificación en dos pasos.",
            "Por favor, cambien el correo de mi cuenta a {email}.",
        ),
        "security": (
            "Recibimos una alerta de inicio de sesión desde un país desconocido para {email}.",
            "Nuestros clientes recibieron un correo de phishing que se hace pasar por {product}, con un enlace a {phish_url}.",
            "Alguien ha creado usuarios administradores en nuestra cuenta que no reconocemos.",
            "Nuestra clave de API se ha usado cientos de veces desde una IP desconocida.",
        ),
        "shipping": (
            "Mi pedido {order} debía llegar el lunes y todavía no ha llegado.",
            "El paquete del pedido {order} llegó dañado y el {device} no enciende.",
            "El seguimiento de {carrier} para {order} no se actualiza desde hace {n_days} días.",
            "Recibí un artículo equivocado; había pedido un {device}.",
        ),
        "feature_request": (
            "Sería genial que {product} tuviera {feature}.",
            "A nuestro equipo le vendría muy bien esta función: {feature}.",
            "¿Tienen previsto añadir {feature}? Muchos usuarios lo piden.",
        ),
        "how_to": (
            "¿Cómo puedo exportar todos los tickets de {product} a CSV?",
            "¿Dónde configuro las notificaciones por correo para mi equipo?",
            "¿Hay alguna guía para conectar {product} con Slack?",
            "¿Podrían explicarme cómo funcionan los roles y permisos?",
        ),
    },
    vague_subjects=("Problema", "Necesito ayuda", "Consulta", "Algo no funciona", "Seguimiento de mi solicitud"),
    vague_problems=(
        "Algo no funciona como debería.",
        "Tengo un problema y necesito que alguien lo revise.",
        "Vuelvo a escribir por mi mensaje anterior, sigo necesitando ayuda.",
        "¿Alguien de su equipo puede contactarme?",
    ),
    urgency_cues={
        "critical": (
            "Producción está caída y todos los usuarios están afectados.",
            "Estamos perdiendo datos ahora mismo, ¡necesitamos ayuda urgente!",
            "Parece una brecha de seguridad, por favor escalen de inmediato.",
            "URGENTE: no funciona nada para ninguno de nuestros clientes.",
        ),
        "high": (
            "Por favor, revísenlo lo antes posible.",
            "Esto está bloqueando a mi equipo hoy.",
            "Necesitamos una solución antes de que acabe el día.",
            "Varios usuarios están afectados y va a peor.",
        ),
        "medium": (
            "Estaría bien resolverlo esta semana.",
            "Algunos compañeros lo han notado.",
            "No nos bloquea, pero es molesto.",
            "De momento tenemos una solución provisional.",
        ),
        "low": (
            "Sin prisa, cuando puedan.",
            "Solo es una pregunta, nada urgente.",
            "Prioridad baja, solo por curiosidad.",
            "Tómense su tiempo, esto puede esperar.",
        ),
    },
    sentiment_cues={
        "negative": (
            "Esto es inaceptable.",
            "Estoy muy frustrado.",
            "Sinceramente, estoy muy decepcionado con su servicio.",
            "¡Es la tercera vez que escribo por esto!",
        ),
        "neutral": (
            "Quedo a la espera de los siguientes pasos.",
            "Avísenme si necesitan más información.",
            "Los detalles están abajo.",
        ),
        "positive": (
            "¡Muchísimas gracias, excelente servicio como siempre!",
            "Nos encanta el producto, este es el único problema.",
            "Su equipo siempre ha sido muy amable, ¡gracias!",
        ),
    },
    subject_prefixes={
        "critical": ("URGENTE: ", "[URGENTE] "),
        "high": ("Importante: ",),
        "medium": (),
        "low": ("Consulta: ", "Pregunta rápida: "),
    },
    greetings=("Hola,", "Buenos días,", "Hola {agent},", "Estimado equipo de soporte,"),
    closings=("Gracias,\n{first}", "Saludos,\n{name}", "Un saludo,\n{first}", "Atentamente,\n{name}"),
    signature="--\nSaludos cordiales,\n{name}\n{title} | {company}\nTel.: {phone}",
    contact_lines=(
        "Pueden llamarme al {phone}.",
        "Por favor, respondan a {email}.",
        "El correo de mi cuenta es {email}.",
        "Captura de pantalla: {url}",
    ),
    card_lines=("El cargo se hizo en la tarjeta {card}.",),
    quote_header="El {weekday}, {day} {month} {year} a las {hour:02d}:{minute:02d}, " + _SUPPORT_FROM + " escribió:",
    quoted_replies=(
        "Gracias por contactarnos. ¿Podría enviarnos una captura del error?",
        "Hemos enviado su solicitud a nuestros especialistas.",
        "¿Podría confirmar el correo de la cuenta?",
    ),
    reply_prefix="RE: ",
    call_notes_prefix="Notas de la llamada: ",
    weekdays=("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
    months=("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"),
    names=(
        "María García", "José Martínez", "Lucía Fernández", "Carlos López",
        "Ana Rodríguez", "Javier Sánchez", "Sofía Torres", "Diego Ramírez",
    ),  # fmt: skip
    titles=("Responsable de IT", "Director de operaciones", "Jefa de administración", "Gerente"),
    phone_formats=(
        "+34 6{d[0]}{d[1]} {d[2]}{d[3]}{d[4]} {d[5]}{d[6]}{d[7]}",
        "91 {d[0]}{d[1]}{d[2]} {d[3]}{d[4]} {d[5]}{d[6]}",
        "+52 55 {d[0]}{d[1]}{d[2]}{d[3]} {d[4]}{d[5]}{d[6]}{d[7]}",
    ),
    free_mail_domains=("gmail.com", "hotmail.es", "outlook.es", "yahoo.es"),
    carriers=("Correos", "SEUR", "MRW", "DHL"),
    features=("modo oscuro", "inicio de sesión único con Okta", "edición masiva", "exportación de informes a CSV"),
    amounts=("9,99 €", "19,00 €", "49,00 €", "99,00 €", "149,00 €", "1.299,00 €"),
)

_FRENCH = _LanguageText(
    subjects={
        "billing": (
            "Double prélèvement pour la commande {order}",
            "Question sur la facture {invoice}",
            "Remboursement non reçu pour {order}",
            "Abonnement renouvelé après résiliation",
        ),
        "technical": (
            "{product} plante sans arrêt",
            "Erreur {error} à l'enregistrement",
            "La synchronisation échoue depuis la mise à jour",
            "{product} ne charge pas dans {browser}",
        ),
        "account": (
            "Impossible de me connecter",
            "L'e-mail de réinitialisation du mot de passe n'arrive pas",
            "Bloqué après un changement de téléphone",
            "Modifier l'adresse e-mail du compte",
        ),
        "security": (
            "Connexion suspecte depuis un lieu inconnu",
            "E-mail de phishing utilisant votre nom",
            "Administrateurs inconnus dans notre compte",
            "Faille de sécurité trouvée dans {product}",
        ),
        "shipping": (
            "La commande {order} n'est pas arrivée",
            "Colis endommagé à la livraison",
            "Le suivi de {order} ne se met pas à jour",
            "Mauvais article livré",
        ),
        "feature_request": (
            "Suggestion : {feature}",
            "Proposition pour {product}",
            "Est-il prévu d'ajouter {feature} ?",
        ),
        "how_to": (
            "Comment exporter mes données ?",
            "Comment connecter {product} à Slack ?",
            "Question sur les notifications",
            "Où trouver les rapports d'utilisation ?",
        ),
    },
    problems={
        "billing": (
            "J'ai été débité deux fois de {amount} pour la commande {order}.",
            "La facture {invoice} indique {amount}, mais notre formule devrait coûter moins cher.",
            "J'ai résilié mon abonnement le mois dernier et j'ai encore été prélevé de {amount} aujourd'hui.",
            "J'ai demandé le remboursement de la commande {order} il y a deux semaines et je ne l'ai toujours pas reçu.",
        ),
        "technical": (
            "{product} plante avec l'erreur {error} chaque fois que j'enregistre un rapport.",
            "Depuis la dernière mise à jour, {product} affiche une page blanche dans {browser}.",
            "Notre tâche de synchronisation échoue avec {error} et rien n'est importé.",
            "L'API renvoie {error} pour la moitié de nos requêtes, voir {url}.",
        ),
        "account": (
            "Je n'arrive pas à me connecter alors que je viens de réinitialiser mon mot de passe.",
            "L'e-mail de réinitialisation du mot de passe n'arrive jamais sur {email}.",
            "J'ai changé de téléphone et je ne peux plus passer la double authentification.",
            "Merci de remplacer l'adresse e-mail de mon compte par {email}.",
        ),
        "security": (
            "Nous avons reçu une alerte de connexion depuis un pays inconnu pour {email}.",
            "Des clients ont reçu un e-mail de phishing se faisant passer pour {product}, avec un lien vers {phish_url}.",
            "Quelqu'un a créé des comptes administrateurs que nous ne connaissons pas.",
            "Notre clé API a été utilisée des centaines de fois depuis une adresse IP inconnue.",
        ),
        "shipping": (
            "Ma commande {order} devait arriver lundi et n'est toujours pas là.",
            "Le colis de la commande {order} est arrivé endommagé et le {device} ne s'allume pas.",
            "Le suivi {carrier} pour {order} n'a pas bougé depuis {n_days} jours.",
            "J'ai reçu le mauvais article ; j'avais commandé un {device}.",
        ),
        "feature_request": (
            "Ce serait génial si {product} proposait {feature}.",
            "Notre équipe profiterait beaucoup de cette fonctionnalité : {feature}.",
            "Est-il prévu d'ajouter {feature} ? Beaucoup de nos utilisateurs le demandent.",
        ),
        "how_to": (
            "Comment exporter tous les tickets de {product} en CSV ?",
            "Où configurer les notifications par e-mail pour mon équipe ?",
            "Existe-t-il un guide pour connecter {product} à Slack ?",
            "Pourriez-vous m'expliquer comment fonctionnent les rôles et les droits ?",
        ),
    },
    vague_subjects=("Problème", "Besoin d'aide", "Question", "Quelque chose ne va pas", "Relance de ma demande"),
    vague_problems=(
        "Quelque chose ne fonctionne pas comme prévu.",
        "J'ai un problème et j'aimerais que quelqu'un regarde.",
        "Je reviens vers vous au sujet de mon dernier message, j'ai toujours besoin d'aide.",
        "Quelqu'un de votre équipe peut-il me recontacter ?",
    ),
    urgency_cues={
        "critical": (
            "La production est à l'arrêt et tous les utilisateurs sont touchés.",
            "Nous perdons des données en ce moment, il nous faut de l'aide au plus vite !",
            "Cela ressemble à une faille de sécurité, merci d'escalader immédiatement.",
            "URGENT : plus rien ne fonctionne pour nos clients.",
        ),
        "high": (
            "Merci de regarder cela dès que possible.",
            "Cela bloque mon équipe aujourd'hui.",
            "Il nous faut une solution avant ce soir.",
            "Plusieurs utilisateurs sont touchés et ça empire.",
        ),
        "medium": (
            "Ce serait bien de régler cela cette semaine.",
            "Quelques collègues l'ont remarqué.",
            "Ce n'est pas bloquant, mais c'est agaçant.",
            "Nous avons une solution de contournement pour l'instant.",
        ),
        "low": (
            "Rien de pressé, quand vous aurez le temps.",
            "Juste une question, rien d'urgent.",
            "Priorité basse, simple curiosité.",
            "Prenez votre temps, cela peut attendre.",
        ),
    },
    sentiment_cues={
        "negative": (
            "C'est inacceptable.",
            "Je suis très frustré.",
            "Honnêtement, je suis très déçu de votre service.",
            "C'est la troisième fois que j'écris à ce sujet !",
        ),
        "neutral": (
            "Merci de m'indiquer la marche à suivre.",
            "N'hésitez pas si vous avez besoin de plus d'informations.",
            "Les détails sont ci-dessous.",
        ),
        "positive": (
            "Merci beaucoup, super service comme toujours !",
            "Nous adorons le produit, c'est le seul problème.",
            "Votre équipe a toujours été très serviable, merci !",
        ),
    },
    subject_prefixes={
        "critical": ("URGENT : ", "[URGENT] "),
        "high": ("Important : ",),
        "medium": (),
        "low": ("Question : ", "Petite question : "),
    },
    greetings=("Bonjour,", "Bonjour {agent},", "Madame, Monsieur,", "Chère équipe support,"),
    closings=("Merci,\n{first}", "Cordialement,\n{name}", "Bien à vous,\n{first}", "Bonne journée,\n{first}"),
    signature="--\nCordialement,\n{name}\n{title} | {company}\nTél. : {phone}",
    contact_lines=(
        "Vous pouvez me joindre au {phone}.",
        "Merci de répondre à {email}.",
        "L'adresse e-mail de mon compte est {email}.",
        "Capture d'écran : {url}",
    ),
    card_lines=("Le prélèvement a été fait sur la carte {card}.",),
    quote_header="Le {weekday} {day} {month} {year} à {hour:02d}:{minute:02d}, " + _SUPPORT_FROM + " a écrit :",
    quoted_replies=(
        "Merci de nous avoir contactés. Pourriez-vous nous envoyer une capture de l'erreur ?",
        "Nous avons transmis votre demande à nos spécialistes.",
        "Pourriez-vous confirmer l'adresse e-mail du compte ?",
    ),
    reply_prefix="RE : ",
    call_notes_prefix="Notes d'appel : ",
    weekdays=("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
    months=("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
    names=(
        "Camille Dubois", "Julien Martin", "Élodie Lefèvre", "Thomas Bernard",
        "Chloé Moreau", "Nicolas Laurent", "Inès Girard", "Antoine Roux",
    ),  # fmt: skip
    titles=("Responsable informatique", "Directrice des opérations", "Office manager", "Gérant"),
    phone_formats=(
        "+33 6 {d[0]}{d[1]} {d[2]}{d[3]} {d[4]}{d[5]} {d[6]}{d[7]}",
        "01 {d[0]}{d[1]} {d[2]}{d[3]} {d[4]}{d[5]} {d[6]}{d[7]}",
        "+32 2 {d[0]}{d[1]}{d[2]} {d[3]}{d[4]} {d[5]}{d[6]}",
    ),
    free_mail_domains=("orange.fr", "free.fr", "gmail.com", "laposte.net"),
    carriers=("La Poste", "Colissimo", "Chronopost", "DPD"),
    features=(
        "le mode sombre", "l'authentification unique avec Okta", "la modification en masse", "l'export CSV des rapports",
    ),  # fmt: skip
    amounts=("9,99 €", "19,00 €", "49,00 €", "99,00 €", "149,00 €", "1 299,00 €"),
)

_TEXTS: Final[dict[str, _LanguageText]] = {"en": _ENGLISH, "de": _GERMAN, "es": _SPANISH, "fr": _FRENCH}

# IANA zones per language with weights; a few customers of every language live anywhere.
_TIMEZONES_BY_LANGUAGE: Final[dict[str, dict[str, float]]] = {
    "en": {
        "America/New_York": 0.28, "America/Chicago": 0.10, "America/Los_Angeles": 0.15, "Europe/London": 0.15,
        "Asia/Kolkata": 0.10, "Australia/Sydney": 0.08, "Asia/Singapore": 0.07, "Asia/Tokyo": 0.07,
    },
    "de": {"Europe/Berlin": 0.75, "Europe/Vienna": 0.15, "Europe/Zurich": 0.10},
    "es": {"Europe/Madrid": 0.45, "America/Mexico_City": 0.30, "America/Bogota": 0.10,
           "America/Argentina/Buenos_Aires": 0.15},
    "fr": {"Europe/Paris": 0.75, "Europe/Brussels": 0.10, "America/Toronto": 0.15},
}  # fmt: skip
_TIMEZONES: Final[tuple[str, ...]] = tuple(dict.fromkeys(z for zs in _TIMEZONES_BY_LANGUAGE.values() for z in zs))
_EXPAT_RATE: Final[float] = 0.04

# Shared pools; fictional companies, our own products, and the card networks' test numbers.
_PRODUCTS: Final[tuple[str, ...]] = (
    "Nightdesk Cloud", "Nightdesk Mobile", "Atlas API", "Pulse Dashboard", "Beacon Sync", "Helix CRM",
)  # fmt: skip
_DEVICES: Final[tuple[str, ...]] = ("Pulse Smart Hub", "Orbit Router X2", "Helix Headset Pro", "Beacon Scanner S1")
_BROWSERS: Final[tuple[str, ...]] = ("Chrome", "Firefox", "Safari", "Edge", "Chrome on Android", "Safari on iOS")
_AGENTS: Final[tuple[str, ...]] = ("Sam", "Alex", "Maria", "Jonas", "Chris", "Lena", "Pat")
_COMPANIES: Final[tuple[tuple[str, str], ...]] = (
    ("Acme Logistics", "acme-logistics.com"),
    ("Globex", "globex.io"),
    ("Initech", "initech.net"),
    ("Brightwave Studios", "brightwave.co.uk"),
    ("Northwind Traders", "northwind-traders.com"),
    ("Vandelay Industries", "vandelay.biz"),
    ("Umbrella Retail", "umbrella-retail.eu"),
    ("Hooli", "hooli.xyz"),
)
_FIXED_ERRORS: Final[tuple[str, ...]] = (
    "HTTP 500", "HTTP 502", "HTTP 503", "0x80070005", "TIMEOUT_EXCEEDED", "SYNC_CONFLICT_409", "ECONNRESET",
)  # fmt: skip
_TEST_CARDS: Final[tuple[str, ...]] = (
    "4111 1111 1111 1111", "5555 5555 5555 4444", "4012 8888 8888 1881",
    "3782 822463 10005", "4111-1111-1111-1111", "5105105105105100",
)  # fmt: skip
_LINK_FORMATS: Final[tuple[str, ...]] = (
    "https://imgur.com/a/{token}",
    "https://app.nightdesk.example/tickets/{number}",
    "https://drive.google.com/file/d/{token}/view",
    "https://pastebin.com/{token}",
)
_PHISHING_FORMATS: Final[tuple[str, ...]] = (
    "http://nightdesk-support-login.com/reset?u={token}",
    "https://nightdesk.secure-verify.net/account/{token}",
    "http://bit.ly/{token}",
)
_TOKEN_ALPHABET: Final[str] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I
# Two letters, not inside a "{slot}" of a template; zero-width, so pairs may overlap.
_LETTER_PAIR: Final[re.Pattern[str]] = re.compile(r"(?=[^\W\d_]{2})(?![^{}]*\})")
_TRANSLITERATIONS: Final[dict[int, str]] = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "'": ""}
)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def generate_tickets(
    rows: int,
    seed: int = 0,
    *,
    languages: Sequence[str] = SUPPORTED_LANGUAGES,
    start: datetime | None = None,
    days: int = 90,
) -> pd.DataFrame:
    """``rows`` synthetic, labelled tickets created in ``[start, start + days)`` (UTC).

    ``start`` defaults to ``DEFAULT_START``; a naive ``start`` is read as UTC. The result
    has the columns of ``OUTPUT_COLUMNS``, ids in creation order, and is identical for
    identical arguments.
    """
    _check_count("rows", rows)
    _check_count("days", days)
    _check_seed(seed)
    languages = _check_languages(languages)
    window_start = _as_utc(start)
    facts_rng, time_rng, slot_rng, text_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    facts = _sample_facts(facts_rng, rows, languages)
    created_ns = _sample_created_at(time_rng, facts, window_start, days)
    slots = _sample_slots(slot_rng, facts, languages)
    subjects, bodies = _compose_texts(text_rng, facts, slots, created_ns, languages)
    labels = _labels_with_noise(noise_rng, facts)
    return _assemble_frame(facts, languages, created_ns, subjects, bodies, labels)


def write_tickets(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV, Parquet or JSON Lines, chosen by the suffix of ``path``.

    CSV and JSON Lines carry dates as ISO 8601 strings with a UTC offset, so a reader
    needs no knowledge of the writer's time zone.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(f"cannot write {path}: unsupported suffix {suffix!r}; use one of {', '.join(WRITE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        _with_iso_dates(frame).to_csv(path, index=False)
    else:
        _with_iso_dates(frame).to_json(path, orient="records", lines=True, force_ascii=False)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _check_count(name: str, value: object) -> None:
    # bool is an int subclass, but generate_tickets(True) is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_seed(seed: object) -> None:
    # numpy would accept None and draw fresh OS entropy: that silently breaks determinism.
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    if isinstance(languages, str):  # "en" would otherwise be read as ("e", "n")
        languages = (languages,)
    unique = tuple(dict.fromkeys(languages))
    unknown = [lang for lang in unique if lang not in _TEXTS]
    if not unique or unknown:
        raise ValueError(
            f"languages must be a non-empty subset of {', '.join(SUPPORTED_LANGUAGES)}; got {list(languages)!r}"
        )
    return unique


def _as_utc(start: datetime | None) -> pd.Timestamp:
    if start is None:
        return DEFAULT_START
    stamp = pd.Timestamp(start)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# --------------------------------------------------------------------------------------
# Sampling the facts of each ticket (integer codes; turned into strings at the end)
# --------------------------------------------------------------------------------------


class _Facts(NamedTuple):
    language: np.ndarray  # index into the requested languages
    tier: np.ndarray  # index into CUSTOMER_TIERS
    channel: np.ndarray  # index into CHANNELS
    category: np.ndarray  # index into DEFAULT_CATEGORIES
    urgency: np.ndarray  # index into URGENCY_LABELS
    sentiment: np.ndarray  # index into SENTIMENT_LABELS
    timezone: np.ndarray  # index into _TIMEZONES


def _sample_facts(rng: np.random.Generator, rows: int, languages: tuple[str, ...]) -> _Facts:
    language_weights = np.array([_LANGUAGE_WEIGHTS[lang] for lang in languages])
    language = _draw(rng, language_weights, rows)
    tier = _draw(rng, np.array(_TIER_WEIGHTS), rows)
    channel_table = np.array([_CHANNEL_WEIGHTS_BY_TIER[t] for t in CUSTOMER_TIERS])
    channel = _draw_rows(rng, channel_table[tier])
    category = _draw(rng, np.array(_CATEGORY_WEIGHTS), rows)
    urgency = _draw_rows(rng, _urgency_probabilities(category, tier, channel))
    sentiment = _draw_rows(rng, _sentiment_probabilities(urgency, channel))
    timezone = _draw_rows(rng, _timezone_table(languages)[language])
    return _Facts(language, tier, channel, category, urgency, sentiment, timezone)


def _urgency_probabilities(category: np.ndarray, tier: np.ndarray, channel: np.ndarray) -> np.ndarray:
    shift = np.array(_URGENCY_SHIFT_BY_TIER)[tier] + np.array(_URGENCY_SHIFT_BY_CHANNEL)[channel]
    logits = np.log(np.array(_URGENCY_BY_CATEGORY))[category] + shift[:, None] * np.array(_URGENCY_SEVERITY)
    return _softmax(logits)


def _sentiment_probabilities(urgency: np.ndarray, channel: np.ndarray) -> np.ndarray:
    logits = np.log(np.array(_SENTIMENT_BY_URGENCY))[urgency]
    logits[:, 0] += np.where(channel == CHANNELS.index("social"), _SOCIAL_NEGATIVE_LOGIT, 0.0)
    return _softmax(logits)


def _timezone_table(languages: tuple[str, ...]) -> np.ndarray:
    """Per requested language, the probability of each zone in ``_TIMEZONES``."""
    table = np.full((len(languages), len(_TIMEZONES)), _EXPAT_RATE / len(_TIMEZONES))
    for row, lang in enumerate(languages):
        for zone, weight in _TIMEZONES_BY_LANGUAGE[lang].items():
            table[row, _TIMEZONES.index(zone)] += (1 - _EXPAT_RATE) * weight
    return table


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _draw(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """``size`` indices drawn with the (unnormalised) ``weights``."""
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


def _draw_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One index per row of ``probabilities`` (inverse CDF; vectorised over rows)."""
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    picks = (rng.random(len(probabilities))[:, None] > cumulative).sum(axis=1)
    return np.minimum(picks, probabilities.shape[1] - 1)  # guards against rounding at 1.0


# --------------------------------------------------------------------------------------
# Creation times
# --------------------------------------------------------------------------------------

_NS_PER_SECOND: Final[int] = 1_000_000_000
_NS_PER_DAY: Final[int] = 86_400 * _NS_PER_SECOND


def _sample_created_at(rng: np.random.Generator, facts: _Facts, start: pd.Timestamp, days: int) -> np.ndarray:
    """UTC nanoseconds since the epoch, drawn from local-time daily and weekly profiles."""
    rows = len(facts.urgency)
    urgent = np.isin(facts.urgency, list(_ROUND_THE_CLOCK_URGENCIES))
    first_weekday = start.weekday()
    day = np.empty(rows, dtype=np.int64)
    hour = np.empty(rows, dtype=np.int64)
    for is_urgent in (False, True):  # fixed order keeps the draws reproducible
        mask = urgent == is_urgent
        weekday_weights = np.array(_URGENT_WEEKDAYS if is_urgent else _BUSINESS_WEEKDAYS)
        day_weights = weekday_weights[(first_weekday + np.arange(days)) % 7]
        hour_weights = np.array(_BUSINESS_HOURS) / sum(_BUSINESS_HOURS)
        if is_urgent:  # half of urgent traffic ignores office hours entirely
            hour_weights = 0.5 * hour_weights + 0.5 / 24
        day[mask] = _draw(rng, day_weights, int(mask.sum()))
        hour[mask] = _draw(rng, hour_weights, int(mask.sum()))
    second = rng.integers(0, 3600, size=rows)
    local_ns = start.tz_localize(None).value + day * _NS_PER_DAY + (hour * 3600 + second) * _NS_PER_SECOND
    utc_ns = _local_to_utc(local_ns, facts.timezone)
    return _fold_into_window(utc_ns, start.value, days)


def _local_to_utc(local_ns: np.ndarray, zone_codes: np.ndarray) -> np.ndarray:
    utc_ns = np.empty_like(local_ns)
    for code in np.unique(zone_codes):
        mask = zone_codes == code
        local = pd.DatetimeIndex(local_ns[mask].astype("datetime64[ns]"))
        # Wall-clock times that DST skips or repeats are resolved the same way every time.
        standard_time = np.zeros(mask.sum(), dtype=bool)
        aware = local.tz_localize(_TIMEZONES[code], ambiguous=standard_time, nonexistent="shift_forward")
        utc_ns[mask] = aware.tz_convert("UTC").as_unit("ns").asi8
    return utc_ns


def _fold_into_window(utc_ns: np.ndarray, start_ns: int, days: int) -> np.ndarray:
    """Move times that the zone offset pushed outside the window back inside it.

    Shifting by a whole week keeps the weekday and hour; offsets are far below a week.
    """
    span = days * _NS_PER_DAY
    if days < 7:
        return start_ns + (utc_ns - start_ns) % span
    week = 7 * _NS_PER_DAY
    offset = utc_ns - start_ns
    offset = np.where(offset < 0, offset + week, offset)
    offset = np.where(offset >= span, offset - week, offset)
    return start_ns + offset


# --------------------------------------------------------------------------------------
# Slot values (names, e-mails, numbers...) that fill the templates
# --------------------------------------------------------------------------------------


def _sample_slots(rng: np.random.Generator, facts: _Facts, languages: tuple[str, ...]) -> list[dict[str, str]]:
    rows = len(facts.language)
    texts = [_TEXTS[lang] for lang in languages]
    name = _pick_by_language(rng, facts.language, [t.names for t in texts])
    company_index = rng.integers(0, len(_COMPANIES), size=rows)
    columns = {
        "name": name,
        "first": [n.split(" ")[0] for n in name],
        "email": _emails(rng, name, company_index, facts.language, texts),
        "phone": _phones(rng, facts.language, texts),
        "company": [_COMPANIES[i][0] for i in company_index],
        "title": _pick_by_language(rng, facts.language, [t.titles for t in texts]),
        "carrier": _pick_by_language(rng, facts.language, [t.carriers for t in texts]),
        "feature": _pick_by_language(rng, facts.language, [t.features for t in texts]),
        "amount": _pick_by_language(rng, facts.language, [t.amounts for t in texts]),
        "product": _pick(rng, _PRODUCTS, rows),
        "device": _pick(rng, _DEVICES, rows),
        "browser": _pick(rng, _BROWSERS, rows),
        "agent": _pick(rng, _AGENTS, rows),
        "card": _pick(rng, _TEST_CARDS, rows),
        "order": [f"#{n}" for n in rng.integers(10_000, 100_000, size=rows)],
        "invoice": [f"INV-2025-{n:05d}" for n in rng.integers(1, 100_000, size=rows)],
        "error": _errors(rng, rows),
        "url": _links(rng, _LINK_FORMATS, rows),
        "phish_url": _links(rng, _PHISHING_FORMATS, rows),
        "n_days": [str(n) for n in rng.integers(2, 13, size=rows)],
    }
    keys = tuple(columns)
    return [dict(zip(keys, values)) for values in zip(*columns.values())]


def _pick(rng: np.random.Generator, pool: Sequence[str], rows: int) -> list[str]:
    return [pool[i] for i in rng.integers(0, len(pool), size=rows).tolist()]


def _pick_by_language(rng: np.random.Generator, language: np.ndarray, pools: list[Sequence[str]]) -> list[str]:
    """One value per row from the pool of that row's language."""
    fraction = rng.random(len(language))
    return [pools[lang][int(f * len(pools[lang]))] for lang, f in zip(language.tolist(), fraction.tolist())]


def _emails(
    rng: np.random.Generator,
    names: list[str],
    company_index: np.ndarray,
    language: np.ndarray,
    texts: list[_LanguageText],
) -> list[str]:
    # Most customers write from work; some from a free-mail account of their country.
    style = rng.random(len(names))
    use_work = rng.random(len(names)) < 0.55
    free_mail = _pick_by_language(rng, language, [t.free_mail_domains for t in texts])
    number = rng.integers(1, 100, size=len(names))
    locals_by_name = {name: _email_local(name).split(".", 1) for name in set(names)}
    emails = []
    rows = zip(names, style.tolist(), use_work.tolist(), company_index.tolist(), free_mail, number.tolist())
    for name, s, work, company, free, n in rows:
        first, last = locals_by_name[name]
        domain = _COMPANIES[company][1] if work else free
        local = f"{first}.{last}" if s < 0.6 else f"{first[0]}{last}" if s < 0.85 else f"{first}{n}"
        emails.append(f"{local}@{domain}")
    return emails


def _email_local(name: str) -> str:
    """Turn "Jürgen Müller" into "juergen.mueller", as people spell their name in an address."""
    ascii_name = unicodedata.normalize("NFKD", name.lower().translate(_TRANSLITERATIONS))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    return ascii_name.replace(" ", ".")


def _phones(rng: np.random.Generator, language: np.ndarray, texts: list[_LanguageText]) -> list[str]:
    formats = _pick_by_language(rng, language, [t.phone_formats for t in texts])
    digits = rng.integers(0, 10, size=(len(language), 10))
    digits[:, 0] = rng.integers(2, 10, size=len(language))  # no area code starts with 0 or 1
    return [fmt.format(d="".join(map(str, row))) for fmt, row in zip(formats, digits.tolist())]


def _errors(rng: np.random.Generator, rows: int) -> list[str]:
    fixed = _pick(rng, _FIXED_ERRORS, rows)
    numbered = rng.integers(1000, 10_000, size=rows)
    style = rng.random(rows)
    return [f"ERR-{n}" if s < 0.5 else f"E{n}" if s < 0.65 else f for f, n, s in zip(fixed, numbered, style)]


def _links(rng: np.random.Generator, formats: Sequence[str], rows: int) -> list[str]:
    chosen = _pick(rng, formats, rows)
    characters = np.array(list(_TOKEN_ALPHABET))[rng.integers(0, len(_TOKEN_ALPHABET), size=(rows, 8))]
    tokens = characters.view("<U8").ravel().tolist()  # eight one-character cells read as one string
    numbers = rng.integers(10_000, 1_000_000, size=rows)
    return [fmt.format(token=t, number=n) for fmt, t, n in zip(chosen, tokens, numbers)]


# --------------------------------------------------------------------------------------
# Assembling subjects and bodies
# --------------------------------------------------------------------------------------


class _Plan(NamedTuple):
    """The structural decisions for one ticket; drawn vectorised, used row by row."""

    text: _LanguageText
    subject_topic: str | None  # category whose subject templates are used; None: a vague subject
    body_topic: str | None  # category of the problem description; None: a vague description
    mixed_topic: str | None  # a second category mentioned in passing, blurring the first
    urgency_cue: str | None  # the level whose cue is written; None: no cue
    sentiment_cue: str | None
    channel: str
    greeting: bool
    closing: bool
    signature: bool
    quoted: bool
    html: bool
    contact: bool
    card: bool
    second_problem: bool
    double_urgency_cue: bool
    subject_prefix: bool
    cues_first: bool
    typos: int
    quote_date: tuple[int, int, int, int, int, int]  # weekday, day, month, year, hour, minute


class _Choices(NamedTuple):
    """Uniform draws that pick which template of a pool a ticket uses."""

    subject: float
    prefix: float
    problem: float
    problem_offset: float
    mixed: float
    mixed_first: float
    urgency: float
    urgency_offset: float
    sentiment: float
    greeting: float
    closing: float
    contact: float
    card: float
    quote: float
    typo_subject: float


def _compose_texts(
    rng: np.random.Generator,
    facts: _Facts,
    slots: list[dict[str, str]],
    created_ns: np.ndarray,
    languages: tuple[str, ...],
) -> tuple[list[str], list[str]]:
    plans = _plan_tickets(rng, facts, created_ns, languages)
    choices = map(_Choices._make, rng.random((len(slots), len(_Choices._fields))).tolist())
    typo_draws = rng.random((len(slots), 3, 2))
    subjects, bodies = [], []
    for row, (plan, choice, row_slots) in enumerate(zip(plans, choices, slots)):
        typos = typo_draws[row].tolist() if plan.typos else []  # converting all rows is slow
        subject, body = _compose_ticket(plan, choice, row_slots, typos)
        subjects.append(subject)
        bodies.append(body)
    return subjects, bodies


def _plan_tickets(
    rng: np.random.Generator, facts: _Facts, created_ns: np.ndarray, languages: tuple[str, ...]
) -> list[_Plan]:
    rows = len(facts.category)

    def chance(rate_by_channel: Sequence[float] | float) -> np.ndarray:
        rate = np.asarray(rate_by_channel)
        return rng.random(rows) < (rate[facts.channel] if rate.ndim else rate)

    weak_urgency = chance(_WEAK_CUE_RATE)
    weak_sentiment = chance(_WEAK_CUE_RATE)
    urgency_cue = _weakened_cues(rng, facts.urgency, weak_urgency, URGENCY_LABELS)
    sentiment_cue = _weakened_cues(rng, facts.sentiment, weak_sentiment, SENTIMENT_LABELS)
    subject_topic, body_topic, mixed_topic = _category_topics(rng, facts.category)
    card_rate = np.where(facts.category == DEFAULT_CATEGORIES.index("billing"), _CARD_RATE_BILLING, _CARD_RATE_OTHER)
    prefix_rate = np.array([0.45, 0.2, 0.0, 0.15])[facts.urgency] * ~weak_urgency
    urgent_ticket = facts.urgency <= URGENCY_LABELS.index("high")
    typos = np.where(chance(_TYPO_RATE), 1 + (rng.random(rows) < 0.4) + (rng.random(rows) < 0.1), 0)
    columns = (
        [_TEXTS[languages[i]] for i in facts.language.tolist()],
        subject_topic,
        body_topic,
        mixed_topic,
        urgency_cue,
        sentiment_cue,
        [CHANNELS[i] for i in facts.channel.tolist()],
        chance(_GREETING_RATE).tolist(),
        chance(_CLOSING_RATE).tolist(),
        chance(_SIGNATURE_RATE).tolist(),
        chance(_QUOTED_RATE).tolist(),
        chance(_HTML_RATE).tolist(),
        chance(_CONTACT_RATE).tolist(),
        (rng.random(rows) < card_rate).tolist(),
        chance(0.3).tolist(),
        (chance(0.3) & urgent_ticket & ~weak_urgency).tolist(),
        (rng.random(rows) < prefix_rate).tolist(),
        chance(0.25).tolist(),
        typos.tolist(),
        _quote_dates(rng, created_ns),
    )
    return [_Plan._make(values) for values in zip(*columns)]


def _weakened_cues(
    rng: np.random.Generator, labels: np.ndarray, weak: np.ndarray, names: tuple[str, ...]
) -> list[str | None]:
    """The cue level to write per ticket: the label's own, or for weak tickets a
    neighbouring level (60%) or none at all (40%), so that text and label disagree a bit."""
    step = np.where(rng.random(len(labels)) < 0.5, -1, 1)
    neighbour = labels + step
    neighbour = np.where((neighbour < 0) | (neighbour >= len(names)), labels - step, neighbour)
    silent = rng.random(len(labels)) < 0.4
    level = np.where(weak, np.where(silent, -1, neighbour), labels)
    return [names[i] if i >= 0 else None for i in level.tolist()]


def _category_topics(
    rng: np.random.Generator, category: np.ndarray
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """Per ticket, which category the subject, the description and a side remark are about.

    Most tickets are clearly about their category. Some also mention another topic (and
    half of those put it in the subject line); a few are too vague to tell at all.
    """
    rows = len(category)
    draw = rng.random(rows)
    mixed = draw < _MIXED_CATEGORY_RATE
    vague = (draw >= _MIXED_CATEGORY_RATE) & (draw < _MIXED_CATEGORY_RATE + _VAGUE_CATEGORY_RATE)
    other = (category + rng.integers(1, len(DEFAULT_CATEGORIES), size=rows)) % len(DEFAULT_CATEGORIES)
    misleading_subject = mixed & (rng.random(rows) < 0.5)
    subject = np.where(vague, -1, np.where(misleading_subject, other, category))
    body = np.where(vague, -1, category)
    side_remark = np.where(mixed, other, -1)
    def names(codes: np.ndarray) -> list[str | None]:
        return [DEFAULT_CATEGORIES[i] if i >= 0 else None for i in codes.tolist()]

    return names(subject), names(body), names(side_remark)


def _quote_dates(rng: np.random.Generator, created_ns: np.ndarray) -> list[tuple[int, ...]]:
    """When support's previous answer was sent: a few hours to four days earlier."""
    earlier = created_ns - rng.integers(3 * 3600, 4 * 86_400, size=len(created_ns)) * _NS_PER_SECOND
    stamps = pd.DatetimeIndex(earlier.astype("datetime64[ns]"))
    parts = (stamps.day_of_week, stamps.day, stamps.month - 1, stamps.year, stamps.hour, stamps.minute)
    return list(zip(*(np.asarray(p).tolist() for p in parts)))


def _compose_ticket(
    plan: _Plan, choice: _Choices, slots: dict[str, str], typo_draws: list[list[float]]
) -> tuple[str, str]:
    text = plan.text
    # Typos go into the template, before the slots are filled: people mistype words,
    # while names, addresses and links are usually pasted or auto-completed.
    subjects = text.subjects[plan.subject_topic] if plan.subject_topic else text.vague_subjects
    subject = _choose(subjects, choice.subject)
    if plan.subject_prefix:
        subject = _choose(text.subject_prefixes[plan.urgency_cue], choice.prefix) + subject
    if plan.typos and choice.typo_subject < 0.25:
        subject = _add_typos(subject, typo_draws[:1])
    subject = subject.format_map(slots)
    if plan.quoted:
        subject = text.reply_prefix + subject
    body = _add_typos(_core_body(plan, choice), typo_draws[: plan.typos]).format_map(slots)
    if plan.signature:
        body += "\n\n" + text.signature.format_map(slots)
    if plan.quoted:
        body += "\n\n" + _quoted_reply(text, plan.quote_date, choice.quote)
    return subject, _as_html(body) if plan.html else body


def _core_body(plan: _Plan, choice: _Choices) -> str:
    """The customer's own words: greeting, problem, cues, contact details, closing."""
    text = plan.text
    problems = text.problems[plan.body_topic] if plan.body_topic else text.vague_problems
    sentences = [_choose(problems, choice.problem)]
    if plan.second_problem:  # a different sentence of the same topic, never a repeat
        sentences.append(_choose_other(problems, choice.problem, choice.problem_offset))
    if plan.mixed_topic:
        side_remark = _choose(text.problems[plan.mixed_topic], choice.mixed)
        sentences.insert(0 if choice.mixed_first < 0.5 else len(sentences), side_remark)
    cues = []
    if plan.urgency_cue:
        urgency_pool = text.urgency_cues[plan.urgency_cue]
        cues.append(_choose(urgency_pool, choice.urgency))
        if plan.double_urgency_cue:
            cues.append(_choose_other(urgency_pool, choice.urgency, choice.urgency_offset))
    if plan.sentiment_cue:
        cues.append(_choose(text.sentiment_cues[plan.sentiment_cue], choice.sentiment))
    paragraphs = [" ".join(cues + sentences if plan.cues_first else sentences + cues)]
    if plan.contact:
        paragraphs.append(_choose(text.contact_lines, choice.contact))
    if plan.card:
        paragraphs.append(_choose(text.card_lines, choice.card))
    if plan.greeting:
        paragraphs.insert(0, _choose(text.greetings, choice.greeting))
    if plan.closing and not plan.signature:
        paragraphs.append(_choose(text.closings, choice.closing))
    body = "\n\n".join(paragraphs)
    if plan.channel == "phone":  # agents type call notes, not letters
        body = text.call_notes_prefix + body
    elif plan.channel == "social":
        body = "@NightdeskHelp " + body
    return body


def _quoted_reply(text: _LanguageText, date: tuple[int, ...], draw: float) -> str:
    weekday, day, month, year, hour, minute = date
    header = text.quote_header.format(
        weekday=text.weekdays[weekday], day=day, month=text.months[month], year=year, hour=hour, minute=minute
    )
    return f"{header}\n> {_choose(text.quoted_replies, draw)}\n>\n> {_SUPPORT_FROM.split(' <')[0]}"


def _as_html(body: str) -> str:
    """The body as an HTML e-mail part: escaped text, one <p> per paragraph, <br> per line."""
    paragraphs = html.escape(body, quote=False).split("\n\n")
    return "".join("<p>" + p.replace("\n", "<br>") + "</p>" for p in paragraphs)


def _choose(pool: Sequence[str], draw: float) -> str:
    return pool[int(draw * len(pool))]


def _choose_other(pool: Sequence[str], draw: float, offset_draw: float) -> str:
    """An element of ``pool`` other than ``_choose(pool, draw)`` (if the pool allows)."""
    index = int(draw * len(pool))
    if len(pool) == 1:
        return pool[index]
    return pool[(index + 1 + int(offset_draw * (len(pool) - 1))) % len(pool)]


def _add_typos(text: str, draws: Sequence[Sequence[float]]) -> str:
    """Swap, drop or double a letter inside a word of a template, once per (position, kind) draw."""
    for position_draw, kind_draw in draws:
        # Only touch a letter followed by a letter, so digits, URLs' slashes and spacing survive.
        # Searching from a random point is much cheaper than listing every candidate.
        match = _LETTER_PAIR.search(text, int(position_draw * len(text))) or _LETTER_PAIR.search(text)
        if match is None:
            return text
        i = match.start()
        if kind_draw < 1 / 3:
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif kind_draw < 2 / 3:
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + text[i] + text[i:]
    return text


# --------------------------------------------------------------------------------------
# Labels and the final frame
# --------------------------------------------------------------------------------------


def _labels_with_noise(rng: np.random.Generator, facts: _Facts) -> dict[str, list[str]]:
    """The labels, a few percent of them replaced by a different label (annotator noise)."""
    labels = {}
    for task, codes, names in (
        ("urgency", facts.urgency, URGENCY_LABELS),
        ("category", facts.category, DEFAULT_CATEGORIES),
        ("sentiment", facts.sentiment, SENTIMENT_LABELS),
    ):
        flipped = rng.random(len(codes)) < _LABEL_NOISE_RATE
        other = (codes + rng.integers(1, len(names), size=len(codes))) % len(names)
        labels[task] = [names[i] for i in np.where(flipped, other, codes).tolist()]
    return labels


def _assemble_frame(
    facts: _Facts,
    languages: tuple[str, ...],
    created_ns: np.ndarray,
    subjects: list[str],
    bodies: list[str],
    labels: dict[str, list[str]],
) -> pd.DataFrame:
    created_at = pd.DatetimeIndex(created_ns.astype("datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "subject": subjects,
            "body": bodies,
            "channel": [CHANNELS[i] for i in facts.channel.tolist()],
            "customer_tier": [CUSTOMER_TIERS[i] for i in facts.tier.tolist()],
            "language": [languages[i] for i in facts.language.tolist()],
            "created_at": created_at,
            "customer_timezone": [_TIMEZONES[i] for i in facts.timezone.tolist()],
            **labels,
        }
    )
    # Helpdesks number tickets as they arrive; a stable sort keeps ties reproducible.
    frame = frame.sort_values("created_at", kind="stable", ignore_index=True)
    frame.insert(0, "id", [f"T-{n:06d}" for n in range(1, len(frame) + 1)])
    return frame.loc[:, list(OUTPUT_COLUMNS)]


def _with_iso_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every datetime column as ISO 8601 text ("2026-01-05T09:30:00+00:00")."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda stamp: stamp.isoformat() if pd.notna(stamp) else None)
    return out

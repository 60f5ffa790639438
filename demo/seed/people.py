"""Raw material for synthetic customers: names, places (time zone + phone plan), support tickets."""

from __future__ import annotations

FIRST_NAMES = [
    "Olivia", "Liam", "Amara", "Noah", "Sofia", "Mateo", "Aiko", "Ethan", "Priya", "Lucas",
    "Chloe", "Kwame", "Isabella", "Hiroshi", "Fatima", "Oliver", "Ana", "Arjun", "Emma", "Diego",
    "Mia", "Yusuf", "Grace", "Luca", "Zara", "Felix", "Nia", "Jonas", "Leila", "Samuel",
    "Hannah", "Tomás", "Mei", "Daniel", "Aisha", "Erik", "Lucía", "Kenji", "Ava", "Rafael",
    "Ingrid", "Omar", "Chiara", "Malik", "Elena", "Sipho", "Freya", "Ravi", "Julia", "Andrés",
    "Sara", "Min-jun", "Lena", "Carlos", "Maya", "Ibrahim", "Alice", "Thiago", "Nora", "Wei",
    "Emily", "Kofi", "Clara", "Vikram", "Marta", "Jack", "Yara", "Henrik", "Lila", "Gabriel",
]  # fmt: skip
LAST_INITIALS = "ABCDEFGHIJKLMNOPRSTVWY"
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]

# (IANA time zone, E.164 country code, national number length, share of members)
PLACES: list[tuple[str, str, int, float]] = [
    ("America/New_York", "1", 10, 0.16),
    ("America/Chicago", "1", 10, 0.09),
    ("America/Denver", "1", 10, 0.04),
    ("America/Los_Angeles", "1", 10, 0.10),
    ("America/Toronto", "1", 10, 0.05),
    ("America/Mexico_City", "52", 10, 0.04),
    ("America/Sao_Paulo", "55", 11, 0.05),
    ("America/Argentina/Buenos_Aires", "54", 10, 0.02),
    ("Europe/London", "44", 10, 0.08),
    ("Europe/Berlin", "49", 11, 0.05),
    ("Europe/Paris", "33", 9, 0.04),
    ("Europe/Madrid", "34", 9, 0.03),
    ("Europe/Stockholm", "46", 9, 0.02),
    ("Africa/Lagos", "234", 10, 0.02),
    ("Africa/Johannesburg", "27", 9, 0.02),
    ("Asia/Dubai", "971", 9, 0.02),
    ("Asia/Kolkata", "91", 10, 0.05),
    ("Asia/Singapore", "65", 8, 0.02),
    ("Asia/Tokyo", "81", 10, 0.04),
    ("Asia/Seoul", "82", 10, 0.02),
    ("Australia/Sydney", "61", 9, 0.03),
    ("Pacific/Auckland", "64", 9, 0.01),
]

TIERS = [("bronze", 0.55), ("silver", 0.28), ("gold", 0.13), ("platinum", 0.04)]
TIER_POINTS_MULTIPLIER = {"bronze": 1.0, "silver": 1.25, "gold": 1.5, "platinum": 2.0}
SOURCES_SESSION = [("web", 0.5), ("ios", 0.3), ("android", 0.2)]

# Support tickets people actually write: {product} is something they bought or browsed.
TICKET_TEXTS = [
    "Hi, my {product} arrived with a crack along one side. Can I get a replacement?",
    "Order still hasn't shipped after 6 days, the tracking page says label created. Where is my {product}?",
    "The {product} I got is the wrong size, how do I exchange it?",
    "I was charged twice for my {product} order, please refund the duplicate charge.",
    "My points from last week's purchase never showed up in my account.",
    "Can't log in to the app, it keeps saying my password is wrong even after resetting it.",
    "The zip on my {product} broke after two uses. Really disappointed.",
    "Is the {product} coming back in stock? It's been sold out for weeks.",
    "I tried to redeem my reward at checkout but the code was rejected.",
    "Please update my delivery address before my {product} ships, I moved.",
    "The {product} smells strongly of chemicals out of the box, is that normal?",
    "Love the {product} but the instructions are missing from the box, is there a PDF?",
    "Why did my tier drop to bronze? I've been a member for three years.",
    "Package marked delivered but nothing at my door. Neighbours haven't seen it either.",
    "The coupon you emailed me expired before I could use it, can you extend it?",
    "Stop sending me so many texts please, once a week is plenty.",
]
TICKET_RESOLUTIONS = ["replacement_sent", "refunded", "answered", "points_adjusted", "no_response"]
TICKET_CHANNELS = [("email", 0.5), ("chat", 0.35), ("phone", 0.15)]

"""Editorial content in the catalogue: guides and stories the agent can send instead of a discount.
Hand-written, one (title, description) pair per piece, six per category."""

from __future__ import annotations

CONTENT: dict[str, list[tuple[str, str]]] = {
    "outdoor": [
        (
            "Your First Night in a New Tent",
            "How to pitch, guy out and ventilate a new tent so you wake up dry: a practice run in the "
            "garden, picking a flat pitch, and stopping condensation.",
        ),
        (
            "Backcountry Cooking Made Simple",
            "Stove safety, fuel planning and five one-pot dinners that need only boiling water.",
        ),
        (
            "Layering a Sleep System for Cold Nights",
            "Why your sleeping pad matters as much as your bag, what temperature ratings mean, and how "
            "to stay warm below freezing.",
        ),
        (
            "Leave No Trace: Seven Principles",
            "A short guide to camping and hiking without leaving a mark, from campfires to waste.",
        ),
        (
            "Packing List for a Weekend Backpacking Trip",
            "A printable checklist of shelter, sleep, kitchen, water and first-aid essentials.",
        ),
        (
            "Choosing a Water Filter",
            "Squeeze filters, pumps, tablets and UV pens compared for weight, speed and safety.",
        ),
    ],
    "apparel": [
        (
            "The Three-Layer System Explained",
            "Base layer, mid layer and shell: how to dress for changing mountain weather.",
        ),
        (
            "Caring for Merino Wool",
            "Washing, drying and storing merino so it lasts for years without shrinking.",
        ),
        (
            "How to Re-Proof a Rain Jacket",
            "Restore the water-repellent finish on a tired shell with a wash-in treatment.",
        ),
        (
            "Capsule Wardrobe for Travel",
            "Ten versatile pieces that make a fortnight of outfits in one carry-on bag.",
        ),
        (
            "Sizing Guide: Finding Your Fit",
            "How to measure yourself and read our size charts for jackets, pants and base layers.",
        ),
        (
            "Dressing for Winter City Days",
            "Staying warm on the commute without overheating indoors: parkas, vests and knits.",
        ),
    ],
    "footwear": [
        (
            "Breaking In New Hiking Boots",
            "A two-week plan to soften new boots and avoid blisters before a big trip.",
        ),
        (
            "Choosing Running Shoes for Your Gait",
            "Neutral versus stability shoes, heel drop, and when to replace worn trainers.",
        ),
        (
            "Trail Running for Beginners",
            "Technique for climbs, descents and roots, and what shoes and vests to bring.",
        ),
        ("Waterproofing Leather Boots", "Cleaning, conditioning and waxing leather boots for wet seasons."),
        (
            "Lacing Techniques for Comfort",
            "Heel-lock and window lacing to fix slipping heels and pressure points.",
        ),
        (
            "Foot Care After Long Walks",
            "Recovery routines, stretches and slides that help tired feet bounce back.",
        ),
    ],
    "electronics": [
        (
            "Getting the Most From Your New Headphones",
            "Pairing, fit, noise-cancelling modes and battery tips for wireless headphones.",
        ),
        (
            "Power on the Trail: Charging Off-Grid",
            "Solar panels, power banks and how much battery you need for a week outdoors.",
        ),
        (
            "Smartwatch Training Zones Explained",
            "Using heart-rate zones from your watch to train smarter, not harder.",
        ),
        (
            "Filming Your Adventures in 4K",
            "Mounts, settings and stabilisation tips for action camera footage.",
        ),
        (
            "Setting Up a Smart Home Routine",
            "Automate lights, music and reminders with a smart speaker in ten minutes.",
        ),
        (
            "Protecting Your Gadgets From the Weather",
            "Waterproof ratings decoded and simple ways to keep electronics dry.",
        ),
    ],
    "home": [
        (
            "Making Your Bedroom a Sleep Sanctuary",
            "Light, temperature, bedding and scent: small changes for deeper sleep.",
        ),
        (
            "Caring for Linen Bedding",
            "Washing temperatures and drying tips that keep linen soft and long-lasting.",
        ),
        (
            "Houseplants That Are Hard to Kill",
            "Seven forgiving plants for low light and busy owners, and how to pot them.",
        ),
        (
            "Cleaner Air at Home",
            "Where to place an air purifier, when to change filters, and other ways to cut allergens.",
        ),
        ("Candle Care 101", "Trim the wick, burn evenly and get every hour out of a soy candle."),
        (
            "A Calm, Clutter-Free Living Room",
            "A weekend plan to reset a living room with textiles, light and fewer things.",
        ),
    ],
    "kitchen": [
        (
            "Seasoning and Caring for Cast Iron",
            "How to clean, re-season and cook in cast iron so it becomes naturally non-stick.",
        ),
        (
            "Brewing Better Pour-Over Coffee",
            "Grind size, water temperature and ratios for a sweeter, cleaner cup.",
        ),
        (
            "Knife Skills: Five Essential Cuts",
            "Hold a chef's knife safely and master dicing, mincing and julienne.",
        ),
        (
            "Sunday Meal Prep in Two Hours",
            "A plan for five lunches and dinners using glass containers and one oven.",
        ),
        (
            "Campfire Recipes for the Whole Group",
            "Skillet breakfasts, foil-packet dinners and a Dutch oven cobbler for camp.",
        ),
        (
            "Smoothies That Actually Keep You Full",
            "Protein, fibre and fat in the right balance, with six blender recipes.",
        ),
    ],
    "beauty": [
        (
            "Building a Simple Skincare Routine",
            "Cleanse, treat, moisturise, protect: a four-step routine for any skin type.",
        ),
        (
            "Sunscreen Every Day, Explained",
            "SPF, UVA protection and how much to apply, including on hikes and beach days.",
        ),
        (
            "Introducing Retinol Without Irritation",
            "How often to start, what to pair it with, and what to avoid.",
        ),
        (
            "Finding Your Lipstick Shade",
            "Undertones, finishes and how to choose a colour that lasts all day.",
        ),
        ("Caring for Coloured Hair", "Masks, washing frequency and heat protection that keep colour vivid."),
        (
            "Choosing a Signature Fragrance",
            "Fragrance families, concentration and how to test a scent on skin.",
        ),
    ],
    "fitness": [
        (
            "A 20-Minute Home Strength Workout",
            "A full-body circuit with dumbbells or bands that fits in a lunch break.",
        ),
        ("Yoga for Runners", "Ten poses that open hips and hamstrings after running."),
        ("Foam Rolling for Recovery", "How long, how hard and which muscles to roll after training."),
        ("Couch to 5K in Eight Weeks", "A gentle run-walk plan for new runners, three sessions a week."),
        ("Protein and Recovery Basics", "How much protein you need after training and when to take it."),
        (
            "Kettlebell Swings Done Right",
            "Hinge technique, breathing and a progression from ten to a hundred swings.",
        ),
    ],
    "pets": [
        (
            "Hiking With Your Dog",
            "Harnesses, water, paw care and trail etiquette for a first hike with a dog.",
        ),
        ("Keeping Indoor Cats Happy", "Play, scratching posts and enrichment that prevent boredom."),
        ("Choosing the Right Dog Food", "Reading labels, grain-free diets and how to switch food gently."),
        ("Caring for an Older Dog", "Joint support, beds and exercise adjustments for senior dogs."),
        ("Pet Dental Health at Home", "Brushing, chews and the signs that mean a vet visit."),
        ("Travelling With Pets", "Bowls, carriers, trackers and tips for calm car and train journeys."),
    ],
    "books": [
        ("Our Summer Reading List", "Twelve novels and memoirs our staff could not put down this season."),
        (
            "Books for Your Next Adventure",
            "Trail guides, foraging handbooks and travel writing for the outdoors-minded.",
        ),
        (
            "Reading Stars With Kids",
            "An evening activity plan for finding constellations with a picture atlas.",
        ),
        (
            "Cooking Outdoors: A Reading Guide",
            "The best campfire cookbooks for families, backpackers and car campers.",
        ),
        ("A Mindful Morning Routine", "Five-minute journaling and reading habits to start the day calmly."),
        ("Designing a Reading Nook", "Lighting, throws and shelving for a corner you will actually use."),
    ],
}

# Category-wide coupons: (title, description template with {category}, face value, minimum order)
CATEGORY_COUPONS: list[tuple[str, str, float, float]] = [
    (
        "$15 off {Category} Orders Over $100",
        "Take $15 off any {category} order of $100 or more; one use per member.",
        15.0,
        100.0,
    ),
    (
        "Free Shipping on {Category}",
        "Free standard shipping on your next {category} order, no minimum spend.",
        8.0,
        0.0,
    ),
]

"""The vocabulary of the synthetic marketplace: cities, listing sites, amenities, texts.

Shaped after the public "apartments for rent classified" data set the lab version of this
pipeline uses: US cities of very different popularity, a handful of listing sites, monthly
prices, and free text full of commas, quotes and line breaks.
"""

from __future__ import annotations

from datetime import date, datetime

# (city, state, latitude, longitude, popularity weight, monthly rent level in USD)
CITIES: tuple[tuple[str, str, float, float, float, int], ...] = (
    ("Austin", "TX", 30.2672, -97.7431, 9.0, 1650),
    ("Dallas", "TX", 32.7767, -96.7970, 8.0, 1500),
    ("Houston", "TX", 29.7604, -95.3698, 7.5, 1400),
    ("Los Angeles", "CA", 34.0522, -118.2437, 7.0, 2700),
    ("San Diego", "CA", 32.7157, -117.1611, 5.5, 2600),
    ("San Francisco", "CA", 37.7749, -122.4194, 4.5, 3300),
    ("Denver", "CO", 39.7392, -104.9903, 6.0, 1800),
    ("Chicago", "IL", 41.8781, -87.6298, 6.5, 1900),
    ("New York", "NY", 40.7128, -74.0060, 6.0, 3500),
    ("Seattle", "WA", 47.6062, -122.3321, 5.0, 2300),
    ("Atlanta", "GA", 33.7490, -84.3880, 5.5, 1600),
    ("Miami", "FL", 25.7617, -80.1918, 5.0, 2400),
    ("Tampa", "FL", 27.9506, -82.4572, 3.5, 1700),
    ("Orlando", "FL", 28.5383, -81.3792, 3.5, 1600),
    ("Phoenix", "AZ", 33.4484, -112.0740, 4.5, 1450),
    ("Las Vegas", "NV", 36.1699, -115.1398, 3.0, 1350),
    ("Portland", "OR", 45.5152, -122.6784, 3.0, 1700),
    ("Boston", "MA", 42.3601, -71.0589, 3.5, 3100),
    ("Washington", "DC", 38.9072, -77.0369, 4.0, 2500),
    ("Nashville", "TN", 36.1627, -86.7816, 3.0, 1650),
    ("Charlotte", "NC", 35.2271, -80.8431, 3.0, 1500),
    ("Raleigh", "NC", 35.7796, -78.6382, 2.5, 1450),
    ("Minneapolis", "MN", 44.9778, -93.2650, 2.0, 1400),
    ("Columbus", "OH", 39.9612, -82.9988, 2.0, 1200),
    ("Salt Lake City", "UT", 40.7608, -111.8910, 1.5, 1450),
    ("Kansas City", "MO", 39.0997, -94.5786, 1.2, 1100),
    ("Saint Louis", "MO", 38.6270, -90.1994, 1.0, 1050),
    ("Richmond", "VA", 37.5407, -77.4360, 0.8, 1300),
    ("Boise", "ID", 43.6150, -116.2023, 0.6, 1350),
    ("Des Moines", "IA", 41.5868, -93.6250, 0.4, 950),
)

SOURCES = (
    ("RentLingo", 40),
    ("RentDigs.com", 20),
    ("Listanza", 10),
    ("ListedBuy", 8),
    ("RealRentals", 6),
    ("GoSection8", 6),
    ("rentbits", 4),
    ("Home Rentals", 3),
    ("RENTOCULAR", 2),
    ("tenantcloud", 1),
)

CURRENCIES = (("USD", 92.0), ("EUR", 3.5), ("GBP", 2.5), ("INR", 2.0))
# The demo's own copy of the default rates, used only to give foreign listings plausible prices.
RATE_TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "INR": 0.012}

CATEGORIES = (
    ("housing/rent/apartment", 95),
    ("housing/rent/home", 2),
    ("housing/rent/condo", 2),
    ("housing/rent/short_term", 1),
)
AMENITIES = (
    "Dishwasher",
    "Parking",
    "Pool",
    "Gym",
    "Refrigerator",
    "Washer Dryer",
    "Patio/Deck",
    "Storage",
    "Clubhouse",
    "Fireplace",
    "Elevator",
    "AC",
    "Cable or Satellite",
    "Internet Access",
    "Wood Floors",
    "Garbage Disposal",
    "Playground",
    "Gated",
    "Doorman",
    "Tennis",
)
PETS = (("Cats,Dogs", 45), (None, 30), ("Cats", 10), ("Dogs", 5), ("None", 10))
CALLS_TO_ACTION = (
    ("contact_owner", 40),
    ("save", 25),
    ("book_now", 15),
    ("share", 12),
    ("apply", 6),
    (None, 2),
)
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Pine St",
    "Washington Blvd",
    "Lake Shore Dr",
    "Sunset Blvd",
    "Park Ave",
    "2nd St",
    "Mission St",
    "Broadway",
)
BODY_OPENERS = (
    "Bright, spacious {bed} in the heart of {city}.",
    "Welcome home to this {bed} — close to downtown {city}, shops and transit.",
    'Newly renovated {bed}: "move-in ready", quartz counters, stainless appliances.',
    "Quiet {bed} with a view, 5 min to I-{hw}; café and park nearby.",
    "Luxury {bed}. Ask about our move-in special (1st month 50% off)!",
)
BODY_DETAILS = (
    "Features include: in-unit W/D, walk-in closet, and a private balcony.",
    "Utilities: water, sewer & trash included; electric not included.",
    "No smoking. Pets welcome (breed restrictions apply; $300 deposit).",
    "Call, text or email; showings 7 days a week.\nEqual Housing Opportunity.",
    "Garage parking available for $75/mo, first-come, first-served.",
    "Résumé-style application — we respond within 24 hours ✔",
)

# The demo's business happens in this period; its data is the same whatever day it is made on.
FIRST_DAY = date(2023, 1, 1)
LAST_DAY = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 0, 0, 0)

# Share of rows, per kind of dirt. Each kind also occurs at least once at any scale.
DIRT_RATE = 0.0015

"""An independent implementation of docs/contract.md §5, as plain DuckDB SQL over the raw layer.

The curated layer that the pipeline builds (Spark transform, then merges run after run) must
equal what these queries compute from every row version ever extracted into ``raw.*``: per key
the latest valid version, every rule applied in contract order. Written from the contract alone,
sharing no code with the pipeline, so that one can check the other.
"""

from __future__ import annotations

from decimal import Decimal

TRUE = "('y', 'yes', 'true', 't', '1')"
FALSE = "('n', 'no', 'false', 'f', '0')"


def clean(col: str) -> str:
    """Trim, collapse runs of whitespace, empty → NULL."""
    # Unicode White_Space: ASCII whitespace, vertical tab, NEL and the separators (\p{Z}).
    return f"NULLIF(TRIM(REGEXP_REPLACE({col}, '[\\s\\x0B\\x85\\p{{Z}}]+', ' ', 'g')), '')"


def initcap(expr: str) -> str:
    return (
        f"ARRAY_TO_STRING(LIST_TRANSFORM(STRING_SPLIT(LOWER({expr}), ' '), "
        "lambda w: UPPER(w[1]) || w[2:]), ' ')"
    )


def rates_cte(rates: dict[str, Decimal]) -> str:
    values = ", ".join(f"('{c}', CAST('{r}' AS DECIMAL(18,6)))" for c, r in rates.items())
    return f"rates(currency, rate) AS (VALUES {values})"


def apartments(rates: dict[str, Decimal]) -> str:
    return f"""
WITH {rates_cte(rates)},
n AS (SELECT DISTINCT id, {clean("title")} AS title, {clean("source")} AS source, price,
        UPPER({clean("currency")}) AS currency, listing_created_on, is_active,
        last_modified_timestamp FROM raw.apartments),
c AS (SELECT n.*, CASE
        WHEN id IS NULL THEN 'missing_key'
        WHEN price IS NULL OR price <= 0 THEN 'invalid_price'
        WHEN currency IS NULL OR currency NOT IN (SELECT currency FROM rates)
             THEN 'unknown_currency'
        WHEN listing_created_on IS NULL THEN 'missing_date'
        WHEN is_active IS NULL OR is_active NOT IN (0, 1) THEN 'invalid_boolean'
      END AS reason FROM n)
SELECT id, title, source, price, c.currency, listing_created_on, is_active = 1 AS is_active,
       last_modified_timestamp, CAST(ROUND(price * rate, 2) AS DECIMAL(18,2)) AS price_usd
FROM c JOIN rates r ON r.currency = c.currency WHERE reason IS NULL
QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY last_modified_timestamp DESC) = 1
"""


def apartment_attributes() -> str:
    photo = f"LOWER({clean('has_photo')})"
    return f"""
WITH n AS (SELECT DISTINCT id, {clean("category")} AS category, {clean("body")} AS body,
        {clean("amenities")} AS amenities, bathrooms, bedrooms, fee,
        CASE WHEN {photo} IN {TRUE} OR {photo} = 'thumbnail' THEN TRUE
             WHEN {photo} IN {FALSE} THEN FALSE END AS has_photo,
        {clean("pets_allowed")} AS pets_allowed, {clean("price_display")} AS price_display,
        {clean("price_type")} AS price_type, square_feet, {clean("address")} AS address,
        {initcap(clean("cityname"))} AS cityname, {clean("state")} AS state, latitude,
        longitude, last_modified_timestamp FROM raw.apartment_attributes),
c AS (SELECT n.*, CASE
        WHEN id IS NULL THEN 'missing_key'
        WHEN bedrooms < 0 OR bathrooms < 0 OR square_feet <= 0 THEN 'invalid_measure'
      END AS reason FROM n)
SELECT * EXCLUDE (reason) FROM c WHERE reason IS NULL
QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY last_modified_timestamp DESC) = 1
"""


def user_viewing() -> str:
    wish = f"LOWER({clean('is_wishlisted')})"
    return f"""
WITH n AS (SELECT DISTINCT id, user_id, apartment_id, viewed_at, is_wishlisted AS raw_wish,
        CASE WHEN is_wishlisted IS NULL THEN FALSE WHEN {wish} IN {TRUE} THEN TRUE
             WHEN {wish} IN {FALSE} THEN FALSE END AS is_wishlisted,
        {clean("call_to_action")} AS call_to_action FROM raw.user_viewing),
c AS (SELECT n.*, CASE
        WHEN user_id IS NULL OR apartment_id IS NULL OR viewed_at IS NULL THEN 'missing_field'
        WHEN is_wishlisted IS NULL THEN 'invalid_boolean'
      END AS reason FROM n),
valid AS (SELECT * FROM c WHERE reason IS NULL)
SELECT id, user_id, apartment_id, viewed_at, is_wishlisted, call_to_action FROM valid v
WHERE NOT EXISTS (SELECT 1 FROM valid o WHERE o.user_id = v.user_id
                  AND o.apartment_id = v.apartment_id AND o.viewed_at = v.viewed_at
                  AND o.id < v.id)
"""


def bookings(rates: dict[str, Decimal]) -> str:
    status = f"LOWER({clean('booking_status')})"
    return f"""
WITH {rates_cte(rates)},
n AS (SELECT DISTINCT booking_id, user_id, apartment_id, booking_date, checkin_date,
        checkout_date, total_price, UPPER({clean("currency")}) AS currency,
        CASE WHEN {status} = 'cancelled' THEN 'canceled' ELSE {status} END AS booking_status,
        last_modified_timestamp FROM raw.bookings),
c AS (SELECT n.*, CASE
        WHEN booking_id IS NULL THEN 'missing_key'
        WHEN user_id IS NULL OR apartment_id IS NULL OR checkin_date IS NULL
             OR checkout_date IS NULL THEN 'missing_field'
        WHEN checkout_date <= checkin_date THEN 'invalid_stay'
        WHEN total_price IS NULL OR total_price < 0 THEN 'invalid_price'
        WHEN currency IS NULL OR currency NOT IN (SELECT currency FROM rates)
             THEN 'unknown_currency'
        WHEN booking_status IS NULL OR booking_status NOT IN ('confirmed', 'canceled', 'pending')
             THEN 'invalid_status'
      END AS reason FROM n)
SELECT booking_id, user_id, apartment_id, booking_date, checkin_date, checkout_date,
       total_price, c.currency, booking_status, last_modified_timestamp,
       CAST(ROUND(total_price * rate, 2) AS DECIMAL(18,2)) AS total_price_usd,
       CAST(checkout_date - checkin_date AS INTEGER) AS nights
FROM c JOIN rates r ON r.currency = c.currency WHERE reason IS NULL
QUALIFY ROW_NUMBER() OVER (PARTITION BY booking_id ORDER BY last_modified_timestamp DESC) = 1
"""


def curated_queries(rates: dict[str, Decimal]) -> dict[str, str]:
    return {
        "apartments": apartments(rates),
        "apartment_attributes": apartment_attributes(),
        "user_viewing": user_viewing(),
        "bookings": bookings(rates),
    }

-- presentation.occupancy_rate (docs/contract.md section 6), one row per calendar month M with booked nights:
--   available_listings: apartments with is_active and listing_created_on on or before the last
--     day of M, i.e. before the first day of the next month (23:59 on the last day counts);
--   available_nights: available_listings x the days in M;
--   booked_nights: the nights d (checkin_date <= d < checkout_date) that fall in M, over the
--     confirmed bookings of apartments available in M;
--   occupancy_rate_pct: 100 x booked_nights / available_nights.
--
-- Redshift has no generate_series on compute nodes: a recursive CTE walks each confirmed stay
-- month by month, and the nights of each (stay, month) pair are the length of the overlap of
-- [checkin_date, checkout_date) with [month_start, next_month_start).

DELETE FROM presentation.occupancy_rate;

INSERT INTO presentation.occupancy_rate (
    month_start, available_listings, available_nights, booked_nights, occupancy_rate_pct
)
WITH RECURSIVE stay_months (
    apartment_id, checkin_date, checkout_date, month_start, next_month_start
) AS (
    SELECT
        b.apartment_id,
        b.checkin_date,
        b.checkout_date,
        CAST(DATE_TRUNC('month', b.checkin_date) AS DATE),
        CAST(DATEADD(month, 1, CAST(DATE_TRUNC('month', b.checkin_date) AS DATE)) AS DATE)
    FROM curated.bookings AS b
    WHERE b.booking_status = 'confirmed'
    UNION ALL
    SELECT
        s.apartment_id,
        s.checkin_date,
        s.checkout_date,
        s.next_month_start,
        CAST(DATEADD(month, 1, s.next_month_start) AS DATE)
    FROM stay_months AS s
    WHERE s.next_month_start < s.checkout_date
),

booked AS (
    SELECT
        s.month_start,
        s.next_month_start,
        SUM(
            DATEDIFF(
                day,
                GREATEST(s.checkin_date, s.month_start),
                LEAST(s.checkout_date, s.next_month_start)
            )
        ) AS booked_nights
    FROM stay_months AS s
    INNER JOIN curated.apartments AS a ON s.apartment_id = a.id
    WHERE a.is_active AND a.listing_created_on < s.next_month_start
    GROUP BY s.month_start, s.next_month_start
),

available AS (
    SELECT
        k.month_start,
        COUNT(*) AS available_listings
    FROM booked AS k
    INNER JOIN curated.apartments AS a
        ON a.is_active AND a.listing_created_on < k.next_month_start
    GROUP BY k.month_start
)

SELECT
    k.month_start,
    v.available_listings,
    v.available_listings * DATEDIFF(day, k.month_start, k.next_month_start) AS available_nights,
    k.booked_nights,
    100.0 * CAST(k.booked_nights AS DOUBLE PRECISION)
    / CAST(v.available_listings * DATEDIFF(day, k.month_start, k.next_month_start) AS DOUBLE PRECISION)
        AS occupancy_rate_pct
FROM booked AS k
INNER JOIN available AS v ON k.month_start = v.month_start
WHERE k.booked_nights > 0;

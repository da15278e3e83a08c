-- presentation.top_performing_listings (docs/contract.md section 6): per week of booking_date, the revenue
-- (SUM of total_price_usd) of each apartment's confirmed bookings, ranked with RANK() by revenue
-- descending; the rows ranked 10 or better, ties at 10 included. Bookings whose apartment is
-- unknown still count: title (curated.apartments) and cityname (curated.apartment_attributes)
-- are then NULL, each looked up on its own.

DELETE FROM presentation.top_performing_listings;

INSERT INTO presentation.top_performing_listings (
    week_start, apartment_id, title, cityname, revenue_usd, "rank"
)
SELECT
    ranked.week_start,
    ranked.apartment_id,
    ranked.title,
    ranked.cityname,
    ranked.revenue_usd,
    ranked.revenue_rank
FROM (
    SELECT
        r.week_start,
        r.apartment_id,
        a.title,
        t.cityname,
        r.revenue_usd,
        RANK() OVER (PARTITION BY r.week_start ORDER BY r.revenue_usd DESC) AS revenue_rank
    FROM (
        SELECT
            CAST(DATE_TRUNC('week', b.booking_date) AS DATE) AS week_start,
            b.apartment_id,
            SUM(b.total_price_usd) AS revenue_usd
        FROM curated.bookings AS b
        WHERE b.booking_status = 'confirmed' AND b.booking_date IS NOT NULL
        GROUP BY CAST(DATE_TRUNC('week', b.booking_date) AS DATE), b.apartment_id
    ) AS r
    LEFT JOIN curated.apartments AS a ON r.apartment_id = a.id
    LEFT JOIN curated.apartment_attributes AS t ON r.apartment_id = t.id
) AS ranked
WHERE ranked.revenue_rank <= 10;

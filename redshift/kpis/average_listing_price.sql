-- presentation.average_listing_price (SPEC section 6): per week of listing_created_on (weeks
-- start on Monday), the active listings and their average price in USD.
-- AVG over a DECIMAL keeps the argument's scale on Redshift (2 decimals here): average a DOUBLE.

DELETE FROM presentation.average_listing_price;

INSERT INTO presentation.average_listing_price (week_start, active_listings, avg_price_usd)
SELECT
    CAST(DATE_TRUNC('week', a.listing_created_on) AS DATE) AS week_start,
    COUNT(*) AS active_listings,
    AVG(CAST(a.price_usd AS DOUBLE PRECISION)) AS avg_price_usd
FROM curated.apartments AS a
WHERE a.is_active
GROUP BY CAST(DATE_TRUNC('week', a.listing_created_on) AS DATE);

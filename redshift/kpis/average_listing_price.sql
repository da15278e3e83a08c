-- presentation.average_listing_price (docs/contract.md section 6): per week of listing_created_on (weeks
-- start on Monday), the active listings and their average price in USD.
-- AVG over a DECIMAL keeps the argument's scale on Redshift (2 decimals here), and an AVG over a
-- DOUBLE depends on the order the rows are added in (the last digit moves with the files a run
-- staged): the exact DECIMAL sum, divided once as a DOUBLE, is the same on every run.

DELETE FROM presentation.average_listing_price;

INSERT INTO presentation.average_listing_price (week_start, active_listings, avg_price_usd)
SELECT
    CAST(DATE_TRUNC('week', a.listing_created_on) AS DATE) AS week_start,
    COUNT(*) AS active_listings,
    CAST(SUM(a.price_usd) AS DOUBLE PRECISION) / COUNT(*) AS avg_price_usd
FROM curated.apartments AS a
WHERE a.is_active
GROUP BY CAST(DATE_TRUNC('week', a.listing_created_on) AS DATE);

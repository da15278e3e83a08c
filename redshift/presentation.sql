-- Presentation layer (docs/contract.md section 6): one table per KPI, rebuilt by redshift/kpis/<table>.sql.
-- Written in the Redshift dialect; rentalctl.sqlfiles transpiles it for DuckDB (dropping the
-- distribution, sort key and column encoding clauses, which only Redshift understands).
--
-- The tables are small (one row per week, month or week and user), so most are copied to every
-- node (DISTSTYLE ALL) and sorted on their period. bookings_per_user grows with the users and is
-- distributed on user_id instead. The leading sort key column stays uncompressed (RAW), as
-- Redshift recommends; the other columns use AZ64 (numbers and dates) or ZSTD (text, doubles).
-- Text columns are sized in bytes, as Redshift counts them: 4 per character of the MySQL column
-- they come from (title VARCHAR(255), cityname VARCHAR(100)), as a UTF-8 character may take 4.

CREATE SCHEMA IF NOT EXISTS presentation;

CREATE TABLE IF NOT EXISTS presentation.average_listing_price (
    week_start DATE NOT NULL ENCODE RAW,
    active_listings BIGINT NOT NULL ENCODE AZ64,
    avg_price_usd DOUBLE PRECISION ENCODE ZSTD
)
DISTSTYLE ALL
SORTKEY (week_start);

CREATE TABLE IF NOT EXISTS presentation.occupancy_rate (
    month_start DATE NOT NULL ENCODE RAW,
    available_listings BIGINT NOT NULL ENCODE AZ64,
    available_nights BIGINT NOT NULL ENCODE AZ64,
    booked_nights BIGINT NOT NULL ENCODE AZ64,
    occupancy_rate_pct DOUBLE PRECISION ENCODE ZSTD
)
DISTSTYLE ALL
SORTKEY (month_start);

CREATE TABLE IF NOT EXISTS presentation.popular_locations (
    week_start DATE NOT NULL ENCODE RAW,
    cityname VARCHAR(400) NOT NULL ENCODE ZSTD,
    confirmed_bookings BIGINT NOT NULL ENCODE AZ64,
    "rank" INTEGER NOT NULL ENCODE AZ64
)
DISTSTYLE ALL
COMPOUND SORTKEY (week_start, "rank");

CREATE TABLE IF NOT EXISTS presentation.top_performing_listings (
    week_start DATE NOT NULL ENCODE RAW,
    apartment_id BIGINT NOT NULL ENCODE AZ64,
    title VARCHAR(1020) ENCODE ZSTD,
    cityname VARCHAR(400) ENCODE ZSTD,
    revenue_usd DECIMAL(18, 2) NOT NULL ENCODE AZ64,
    "rank" INTEGER NOT NULL ENCODE AZ64
)
DISTSTYLE ALL
COMPOUND SORTKEY (week_start, "rank");

CREATE TABLE IF NOT EXISTS presentation.bookings_per_user (
    week_start DATE NOT NULL ENCODE RAW,
    user_id BIGINT NOT NULL ENCODE AZ64,
    total_bookings BIGINT NOT NULL ENCODE AZ64,
    confirmed_bookings BIGINT NOT NULL ENCODE AZ64
)
DISTSTYLE KEY
DISTKEY (user_id)
COMPOUND SORTKEY (week_start, user_id);

CREATE TABLE IF NOT EXISTS presentation.average_booking_duration (
    week_start DATE NOT NULL ENCODE RAW,
    confirmed_bookings BIGINT NOT NULL ENCODE AZ64,
    avg_nights DOUBLE PRECISION ENCODE ZSTD
)
DISTSTYLE ALL
SORTKEY (week_start);

CREATE TABLE IF NOT EXISTS presentation.repeat_customer_rate (
    month_start DATE NOT NULL ENCODE RAW,
    customers BIGINT NOT NULL ENCODE AZ64,
    repeat_customers BIGINT NOT NULL ENCODE AZ64,
    repeat_rate_pct DOUBLE PRECISION ENCODE ZSTD
)
DISTSTYLE ALL
SORTKEY (month_start);

-- presentation.repeat_customer_rate (docs/contract.md section 6), per calendar month M of booking_date:
--   customers: distinct users with a confirmed booking in M;
--   repeat_customers: those of them with a confirmed booking b in M such that another confirmed
--     booking b2 of theirs (another booking_id; possibly in an earlier month) was made in
--     [b.booking_date - 30 days, b.booking_date], both ends included;
--   repeat_rate_pct: 100 x repeat_customers / customers.

DELETE FROM presentation.repeat_customer_rate;

INSERT INTO presentation.repeat_customer_rate (
    month_start, customers, repeat_customers, repeat_rate_pct
)
WITH confirmed AS (
    SELECT
        b.booking_id,
        b.user_id,
        b.booking_date,
        CAST(DATE_TRUNC('month', b.booking_date) AS DATE) AS month_start
    FROM curated.bookings AS b
    WHERE b.booking_status = 'confirmed' AND b.booking_date IS NOT NULL
),

customers AS (
    SELECT
        c.month_start,
        COUNT(DISTINCT c.user_id) AS customers
    FROM confirmed AS c
    GROUP BY c.month_start
),

repeaters AS (
    SELECT DISTINCT
        b.month_start,
        b.user_id
    FROM confirmed AS b
    INNER JOIN confirmed AS p
        ON
            b.user_id = p.user_id
            AND b.booking_id <> p.booking_id
            AND p.booking_date >= DATEADD(day, -30, b.booking_date)
            AND p.booking_date <= b.booking_date
)

SELECT
    c.month_start,
    c.customers,
    COUNT(r.user_id) AS repeat_customers,
    100.0 * CAST(COUNT(r.user_id) AS DOUBLE PRECISION) / CAST(c.customers AS DOUBLE PRECISION)
        AS repeat_rate_pct
FROM customers AS c
LEFT JOIN repeaters AS r ON c.month_start = r.month_start
GROUP BY c.month_start, c.customers;

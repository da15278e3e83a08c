-- presentation.bookings_per_user (docs/contract.md section 6): per week of booking_date and user, all their
-- curated bookings (any status, known apartment or not) and the confirmed ones.

DELETE FROM presentation.bookings_per_user;

INSERT INTO presentation.bookings_per_user (
    week_start, user_id, total_bookings, confirmed_bookings
)
SELECT
    CAST(DATE_TRUNC('week', b.booking_date) AS DATE) AS week_start,
    b.user_id,
    COUNT(*) AS total_bookings,
    COUNT(CASE WHEN b.booking_status = 'confirmed' THEN 1 END) AS confirmed_bookings
FROM curated.bookings AS b
WHERE b.booking_date IS NOT NULL
GROUP BY CAST(DATE_TRUNC('week', b.booking_date) AS DATE), b.user_id;

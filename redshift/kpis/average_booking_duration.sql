-- presentation.average_booking_duration (docs/contract.md section 6): per week of checkin_date, the
-- confirmed bookings and their average length in nights.
-- AVG over an INTEGER is an integer on Redshift: average a DOUBLE.

DELETE FROM presentation.average_booking_duration;

INSERT INTO presentation.average_booking_duration (week_start, confirmed_bookings, avg_nights)
SELECT
    CAST(DATE_TRUNC('week', b.checkin_date) AS DATE) AS week_start,
    COUNT(*) AS confirmed_bookings,
    AVG(CAST(b.nights AS DOUBLE PRECISION)) AS avg_nights
FROM curated.bookings AS b
WHERE b.booking_status = 'confirmed'
GROUP BY CAST(DATE_TRUNC('week', b.checkin_date) AS DATE);

-- presentation.popular_locations (docs/contract.md section 6): per week of booking_date, the confirmed
-- bookings per listing city (curated.apartment_attributes.cityname of the booked apartment; no
-- city, or no known apartment, means no row), ranked with RANK() (ties share a rank and the next
-- rank is skipped); the rows ranked 10 or better, ties at 10 included.

DELETE FROM presentation.popular_locations;

INSERT INTO presentation.popular_locations (week_start, cityname, confirmed_bookings, "rank")
SELECT
    ranked.week_start,
    ranked.cityname,
    ranked.confirmed_bookings,
    ranked.city_rank
FROM (
    SELECT
        counted.week_start,
        counted.cityname,
        counted.confirmed_bookings,
        RANK() OVER (
            PARTITION BY counted.week_start ORDER BY counted.confirmed_bookings DESC
        ) AS city_rank
    FROM (
        SELECT
            CAST(DATE_TRUNC('week', b.booking_date) AS DATE) AS week_start,
            t.cityname,
            COUNT(*) AS confirmed_bookings
        FROM curated.bookings AS b
        INNER JOIN curated.apartment_attributes AS t ON b.apartment_id = t.id
        WHERE
            b.booking_status = 'confirmed'
            AND b.booking_date IS NOT NULL
            AND t.cityname IS NOT NULL
        GROUP BY CAST(DATE_TRUNC('week', b.booking_date) AS DATE), t.cityname
    ) AS counted
) AS ranked
WHERE ranked.city_rank <= 10;

-- Source schema of the rental marketplace (docs/contract.md section 3), for MySQL 8 / Aurora MySQL 3 /
-- MariaDB 10.6+. rentalctl only reads these tables; `rentalctl demo-data` creates them when
-- missing. The business keys are indexed but not unique or NOT NULL: the operational data is
-- dirty (rows without a key exist), and the pipeline rejects such rows instead of the database.
-- tests/test_tables.py holds this file equal to the table specs in rentalctl/tables.py.

CREATE TABLE IF NOT EXISTS `apartments` (
  `id` BIGINT NULL,
  `title` VARCHAR(255) NULL,
  `source` VARCHAR(50) NULL,
  `price` DECIMAL(12,2) NULL,
  `currency` VARCHAR(10) NULL,
  `listing_created_on` DATETIME NULL,
  `is_active` TINYINT(1) NULL,
  `last_modified_timestamp` DATETIME(6) NOT NULL,
  KEY `ix_apartments_id` (`id`),
  KEY `ix_apartments_last_modified_timestamp` (`last_modified_timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `apartment_attributes` (
  `id` BIGINT NULL,
  `category` VARCHAR(50) NULL,
  `body` TEXT NULL,
  `amenities` TEXT NULL,
  `bathrooms` DECIMAL(3,1) NULL,
  `bedrooms` DECIMAL(3,1) NULL,
  `fee` DECIMAL(10,2) NULL,
  `has_photo` VARCHAR(20) NULL,
  `pets_allowed` VARCHAR(50) NULL,
  `price_display` VARCHAR(50) NULL,
  `price_type` VARCHAR(20) NULL,
  `square_feet` INT NULL,
  `address` VARCHAR(255) NULL,
  `cityname` VARCHAR(100) NULL,
  `state` VARCHAR(50) NULL,
  `latitude` DECIMAL(10,7) NULL,
  `longitude` DECIMAL(10,7) NULL,
  `last_modified_timestamp` DATETIME(6) NOT NULL,
  KEY `ix_apartment_attributes_id` (`id`),
  KEY `ix_apartment_attributes_last_modified_timestamp` (`last_modified_timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `user_viewing` (
  `id` BIGINT NOT NULL AUTO_INCREMENT,
  `user_id` BIGINT NULL,
  `apartment_id` BIGINT NULL,
  `viewed_at` DATETIME NULL,
  `is_wishlisted` VARCHAR(5) NULL,
  `call_to_action` VARCHAR(50) NULL,
  PRIMARY KEY (`id`),
  KEY `ix_user_viewing_viewed_at` (`viewed_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `bookings` (
  `booking_id` BIGINT NULL,
  `user_id` BIGINT NULL,
  `apartment_id` BIGINT NULL,
  `booking_date` DATETIME NULL,
  `checkin_date` DATE NULL,
  `checkout_date` DATE NULL,
  `total_price` DECIMAL(12,2) NULL,
  `currency` VARCHAR(10) NULL,
  `booking_status` VARCHAR(20) NULL,
  `last_modified_timestamp` DATETIME(6) NOT NULL,
  KEY `ix_bookings_booking_id` (`booking_id`),
  KEY `ix_bookings_last_modified_timestamp` (`last_modified_timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

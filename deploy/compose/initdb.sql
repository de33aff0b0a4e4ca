-- The monolith's database and one per module for the microservices profile.
CREATE DATABASE mallbots;
CREATE DATABASE mallbots_stores;
CREATE DATABASE mallbots_customers;
CREATE DATABASE mallbots_payments;
CREATE DATABASE mallbots_baskets;
CREATE DATABASE mallbots_ordering;
CREATE DATABASE mallbots_depot;
CREATE DATABASE mallbots_cosec;
CREATE DATABASE mallbots_search;
CREATE DATABASE mallbots_notifications;
CREATE DATABASE mallbots_console;

//! The shared store behaviour suite, on PostgreSQL: a new database per test.

conduit_store::store_behaviour_suite!(conduit_store_postgres::testing::fresh_store());

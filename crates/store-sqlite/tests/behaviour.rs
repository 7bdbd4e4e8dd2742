//! The shared store behaviour suite, on SQLite files.

conduit_store::store_behaviour_suite!(conduit_store_sqlite::testing::fresh_store());

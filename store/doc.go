// Package store keeps Lift's state in one DuckDB file: the experiment registry
// (experiments, layers, holdouts and their versions) with an audit log, API keys,
// and the exposure log.
//
// Open applies the schema migrations embedded in the binary (migrations/NNNN_name.sql),
// each in its own transaction and recorded in schema_migrations, so reopening a file
// never runs a migration twice. Number ranges per area keep parallel work apart:
// 0001–0009 foundation, 0010–0019 events, metrics and results, 0020–0029 privacy
// ledger, 0030–0039 jobs, 0040–0049 journeys and models.
//
// Every registry change and its audit entry are written in one transaction, so a
// rejected change stores nothing. Exposures go through a single writer goroutine fed
// by a bounded queue: it group-commits every batch queued at the time through a DuckDB
// appender, and LogExposures returns nil only after that commit.
//
// DuckDB allows one writing process per file; opening a file that another process
// holds gives an experiment.Unavailable error.
package store

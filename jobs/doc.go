// Package jobs runs Lift's scheduled work inside the server (the one DuckDB writer):
// results refreshes, journey comparisons, monitors that raise alerts, and executive
// digests. It is the only user of gocron v2.
//
// Schedules are persisted through a Store and re-registered on start. Each run stands
// for a period: the scheduled time it was fired for (the latest fire time of the
// cron expression or interval at or before the clock's now, in the job's time zone).
// A period that already has a succeeded run is never run again, and what a run
// publishes is keyed by job and period, so a restart in the middle of a run (which
// re-runs the unfinished period on start, as a "catchup") publishes once. Jobs run
// in singleton mode: a run never overlaps the next run of the same job (a fire that
// comes while the previous run is busy waits for it, then finds its period done or runs it). A failed
// attempt is retried with exponential backoff. Time comes from an injected clock,
// so tests drive a week of schedules with a fake clock.
package jobs

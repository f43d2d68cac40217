//go:build unix

package main

import "syscall"

// privateFiles makes every file the process creates from now on unreadable by
// group and others (umask 077 added to the inherited one): the DuckDB file and
// its write-ahead log, which DuckDB deletes at each checkpoint and creates again
// with the process's umask, hold every exposure and event, and no chmod after
// the fact could cover the log's next incarnation. Reports and models written by
// the analyst commands are private too; share them deliberately.
func privateFiles() { syscall.Umask(syscall.Umask(0) | 0o077) }

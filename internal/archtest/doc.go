// Package archtest holds tests that keep the architecture true: every package has a
// package doc comment, and each outside library is imported by its one home package
// only (see ARCHITECTURE.md).
package archtest

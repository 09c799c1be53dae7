//go:build race

package kdc

// raceEnabled reports a -race build, whose shadow memory makes RSS figures meaningless.
const raceEnabled = true

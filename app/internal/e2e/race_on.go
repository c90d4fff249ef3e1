//go:build race

package e2e

// raceEnabled mirrors the test binary's -race into the binary Build makes.
const raceEnabled = true

//go:build race

package main

// raceEnabled mirrors the test binary's -race into the binary buildWithMake makes,
// so that it links the packages the test build already compiled.
const raceEnabled = true

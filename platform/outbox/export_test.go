package outbox

// MaxLanes is maxLanes, for the tests that reach the bound on lanes.
const MaxLanes = maxLanes

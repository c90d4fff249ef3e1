package sqlite

// WithAfterStep returns o with f called after each step of the backup that copied
// pages without finishing, so a test can commit, or cancel, between two steps.
func WithAfterStep(o BackupOptions, f func(steps int)) BackupOptions {
	o.afterStep = f
	return o
}

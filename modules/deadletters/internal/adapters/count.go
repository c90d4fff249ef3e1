package adapters

import (
	"context"
	"fmt"

	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
)

// CountParked counts the letters parked now, waiting for an operator, on the
// status index.
func (s Store) CountParked(ctx context.Context) (int, error) {
	var n int
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM deadletters_letters WHERE status = ?`,
		app.StatusParked).Scan(&n); err != nil {
		return 0, fmt.Errorf("count parked dead letters: %w", err)
	}
	return n, nil
}

// Package app holds the apikeys module's use cases: authenticate a request's key,
// limit its rate, create, list and revoke keys, and make the first admin key.
package app

import (
	"context"

	"github.com/mailroom/mailroom/modules/apikeys/internal/domain"
)

// Store keeps API keys. Declared here, where it is used; the SQLite adapter
// implements it.
type Store interface {
	// Insert stores a new key.
	Insert(ctx context.Context, k domain.Key) error
	// ByPrefix returns every key, revoked or not, whose prefix is prefix.
	ByPrefix(ctx context.Context, prefix string) ([]domain.Key, error)
	// List returns every key, oldest first.
	List(ctx context.Context) ([]domain.Key, error)
	// Revoke marks the key revoked (keeping the first revocation time) and returns
	// it, or a not_found error.
	Revoke(ctx context.Context, id string) (domain.Key, error)
	// CountUsable counts the keys that are not revoked.
	CountUsable(ctx context.Context) (int, error)
}

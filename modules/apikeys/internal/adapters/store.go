// Package adapters implements the apikeys module's store on SQLite.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mailroom/mailroom/modules/apikeys/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Store keeps keys in apikeys_keys.
type Store struct {
	DB  *sqlite.DB
	Now func() time.Time
}

const keyColumns = `id, name, scope, prefix, hash, created_at, revoked_at, allowed_from`

// Insert implements app.Store.
func (s Store) Insert(ctx context.Context, k domain.Key) error {
	// A statement of the shared write transaction is never interrupted (see sqlite.DB.Tx).
	ctx = context.WithoutCancel(ctx)
	allowed, err := encodeAllowedFrom(k.AllowedFrom)
	if err != nil {
		return fmt.Errorf("insert API key %s: %w", k.ID, err)
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO apikeys_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)`,
			k.ID, k.Name, string(k.Scope), k.Prefix, k.Hash[:], k.CreatedAt.UnixMilli(), allowed)
		return err
	})
	if err != nil {
		return apperr.Unavailable("cannot store the API key", fmt.Errorf("insert API key %s: %w", k.ID, err))
	}
	return nil
}

// ByPrefix implements app.Store.
func (s Store) ByPrefix(ctx context.Context, prefix string) ([]domain.Key, error) {
	return s.query(ctx, `SELECT `+keyColumns+` FROM apikeys_keys WHERE prefix = ?`, prefix)
}

// List implements app.Store.
func (s Store) List(ctx context.Context) ([]domain.Key, error) {
	keys, err := s.query(ctx, `SELECT `+keyColumns+` FROM apikeys_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, apperr.Unavailable("cannot list API keys", err)
	}
	return keys, nil
}

// Revoke implements app.Store.
func (s Store) Revoke(ctx context.Context, id string) (domain.Key, error) {
	ctx = context.WithoutCancel(ctx)
	var found bool
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE apikeys_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`,
			s.Now().UnixMilli(), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		found = n == 1
		return err
	})
	if err != nil {
		return domain.Key{}, apperr.Unavailable("cannot revoke the API key", fmt.Errorf("revoke API key %s: %w", id, err))
	}
	if !found {
		return domain.Key{}, apperr.NotFound("API key", id)
	}
	keys, err := s.query(ctx, `SELECT `+keyColumns+` FROM apikeys_keys WHERE id = ?`, id)
	if err != nil || len(keys) != 1 {
		return domain.Key{}, apperr.Unavailable("cannot read the revoked API key", fmt.Errorf("read API key %s: %w (%d rows)", id, err, len(keys)))
	}
	return keys[0], nil
}

// CountUsable implements app.Store.
func (s Store) CountUsable(ctx context.Context) (int, error) {
	var n int
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM apikeys_keys WHERE revoked_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count usable API keys: %w", err)
	}
	return n, nil
}

func (s Store) query(ctx context.Context, q string, args ...any) ([]domain.Key, error) {
	keys, err := sqlite.Query(ctx, s.DB, scanKey, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read API keys: %w", err)
	}
	return keys, nil
}

// encodeAllowedFrom is the stored form of a key's senders: NULL for none (any
// sender), else a JSON array.
func encodeAllowedFrom(senders []string) (sql.NullString, error) {
	if len(senders) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(senders)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode allowed_from: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func scanKey(s sqlite.Scanner) (domain.Key, error) {
	var (
		k       domain.Key
		scope   string
		hash    []byte
		created int64
		revoked sql.NullInt64
		allowed sql.NullString
	)
	if err := s.Scan(&k.ID, &k.Name, &scope, &k.Prefix, &hash, &created, &revoked, &allowed); err != nil {
		return k, err
	}
	if allowed.Valid {
		if err := json.Unmarshal([]byte(allowed.String), &k.AllowedFrom); err != nil {
			return k, fmt.Errorf("API key %s: stored allowed_from is not a JSON list of strings: %w", k.ID, err)
		}
	}
	if len(hash) != len(k.Hash) {
		return k, fmt.Errorf("API key %s: stored hash has %d bytes, want %d", k.ID, len(hash), len(k.Hash))
	}
	copy(k.Hash[:], hash)
	k.Scope = auth.Scope(scope)
	k.CreatedAt = time.UnixMilli(created).UTC()
	if revoked.Valid {
		t := time.UnixMilli(revoked.Int64).UTC()
		k.RevokedAt = &t
	}
	return k, nil
}
